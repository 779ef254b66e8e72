"""Every notebook runs top to bottom: each notebooks/*.ipynb is executed in memory,
in the notebooks directory, and its committed file is never rewritten. A cell that raises fails
the test; so does a code cell that showed output when committed and shows none now, or a
notebook that lost its plots."""

from pathlib import Path

import pytest
from conftest import copy_of

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
TIMEOUT_S = 300  # per cell; each notebook is meant to take about a minute on a CPU


def _has_image(cell) -> bool:
    return any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebook_runs(name, tiny, tmp_path, monkeypatch):
    if name == "05_results.ipynb":  # it reads a copy of the tiny run instead of making another
        monkeypatch.setenv("INSTRUCTGPT_TINY_RUN", str(copy_of(tiny[0], tmp_path / "tiny")))
    committed = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb = nbformat.from_dict(committed)  # a deep copy: the committed outputs stay for comparing
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = nbclient.NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()  # raises CellExecutionError on the first cell that fails
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail(f"{name}: a cell raised:\n{str(e)[-3000:]}")
    pairs = [(i, old, new) for i, (old, new) in enumerate(zip(committed.cells, nb.cells,
                                                              strict=True))
             if old.cell_type == "code"]
    silent = [i for i, old, new in pairs if old.get("outputs") and not new.outputs]
    assert not silent, f"{name}: cells {silent} showed output when committed, none now"
    if any(_has_image(old) for _, old, _ in pairs):
        assert any(_has_image(new) for _, _, new in pairs), f"{name}: the plots are gone"
