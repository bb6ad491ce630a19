"""The public API package: every advertised name resolves, and importing it is light."""

from __future__ import annotations

import subprocess
import sys

import piade


def test_every_public_name_resolves_to_its_home() -> None:
    assert set(piade.__all__) == {*piade._HOMES, "__version__"}
    for name in piade.__all__:
        value = getattr(piade, name)
        if name != "__version__":
            assert getattr(sys.modules[piade._HOMES[name]], name) is value, name
    assert set(piade.__all__) <= set(dir(piade))


def test_import_piade_does_not_import_torch_or_sklearn() -> None:
    probe = "import sys, piade; print(sorted(m for m in ('torch', 'sklearn', 'matplotlib') if m in sys.modules))"
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]", found


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        piade.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("piade.no_such_name resolved")
