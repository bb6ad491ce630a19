"""The in-memory data set every reader returns: uint8 images decoded once, floats on access."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset

from piade.data.common import Sample, count_labels


class ImageDataset(Dataset[dict[str, Any]]):
    """Decoded images and masks of a list of samples, held in memory.

    Items are dicts: ``image`` float32 (3, S, S) in [0, 1]; ``label`` int (0 normal, 1 anomalous);
    ``mask`` float32 (1, S, S) in {0, 1}, zeros when the sample has no mask; ``path`` str (the
    sample's source). ``__getitems__`` converts a whole batch at once for ``DataLoader``.

    Attributes:
        samples: the index, one :class:`Sample` per item.
        labels: the items' labels, in order.
        images: uint8 (N, 3, S, S).
        masks: uint8 (N, 1, S, S) in {0, 1}; a zero-copy view of zeros when no sample has a mask.
        center_crop: the central share of each side the images were cut to before resizing.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        images: torch.Tensor,
        masks: torch.Tensor | None = None,
        *,
        center_crop: float = 1.0,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"images must be uint8 (N, 3, H, W); got {images.dtype} {tuple(images.shape)}"
            )
        if len(samples) != len(images):
            raise ValueError(f"{len(samples)} samples but {len(images)} images")
        size = images.shape[-2:]
        if masks is None:
            masks = torch.zeros((1, 1, *size), dtype=torch.uint8).expand(len(images), 1, *size)
        if masks.shape != (len(images), 1, *size):
            raise ValueError(
                f"masks must be (N, 1, H, W) = {(len(images), 1, *size)}; got {tuple(masks.shape)}"
            )
        self.samples: tuple[Sample, ...] = tuple(samples)
        self.labels: list[int] = [s.label for s in self.samples]
        self.images = images
        self.masks = masks
        self.center_crop = center_crop
        self._has_masks = any(s.mask is not None for s in self.samples)

    @property
    def image_size(self) -> int:
        """Side S of the square images."""
        return int(self.images.shape[-1])

    @property
    def has_masks(self) -> bool:
        """Whether any sample has a ground-truth mask."""
        return self._has_masks

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "image": self.images[index].float().div_(255),
            "label": self.labels[index],
            "mask": self.masks[index].float(),
            "path": self.samples[index].source,
        }

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """The items at ``indices``; converts the batch in one operation per field."""
        rows = torch.as_tensor(indices, dtype=torch.long)
        images = torch.index_select(self.images, 0, rows).float().div_(255)  # (B, 3, S, S)
        if self._has_masks:
            masks = torch.index_select(self.masks, 0, rows).float()  # (B, 1, S, S)
        else:
            masks = torch.zeros((len(rows), *self.masks.shape[1:]))
        return [
            {
                "image": images[j],
                "label": self.labels[i],
                "mask": masks[j],
                "path": self.samples[i].source,
            }
            for j, i in enumerate(indices)
        ]

    def __repr__(self) -> str:
        normal, anomalous = count_labels(self.samples)
        masked = sum(s.mask is not None for s in self.samples)
        return (
            f"ImageDataset({len(self)} images of {self.image_size} px: {normal} normal, "
            f"{anomalous} anomalous, {masked} with masks)"
        )


class ImageSet(Protocol):
    """What piade needs of a data set: a length and items with an ``image`` (3, H, W) in [0, 1]."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Mapping[str, Any]: ...


def stack_images(dataset: ImageSet) -> torch.Tensor:
    """All images of a piade data set as one uint8 tensor (N, 3, H, W)."""
    images = getattr(dataset, "images", None)
    if isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.ndim == 4:
        return images
    items = [dataset[i]["image"] for i in range(len(dataset))]
    return (torch.stack(items) * 255).round().clamp(0, 255).to(torch.uint8)
