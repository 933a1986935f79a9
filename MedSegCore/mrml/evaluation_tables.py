"""Evaluation in the scene: metrics of two segmentation nodes, a table node, a disagreement segmentation."""
from __future__ import annotations

import numpy as np

from ..evaluation import metrics
from . import nodes
from ..errors import InputError

COLUMNS = ("segment", "pred_segment") + metrics.METRICS
FP_COLOR, FN_COLOR = (213 / 255, 94 / 255, 0.0), (86 / 255, 180 / 255, 233 / 255)


def evaluate_nodes(pred_node, ref_node, mapping=None, distances: bool = True):
    """(rows, pred masks, ref masks, geometry): ``pred_node`` against ``ref_node`` on the reference's
    grid (Slicer resamples the prediction if its grid differs).  Segments match by name unless
    ``mapping`` {pred name: ref name} is given."""
    if pred_node is None or ref_node is None:
        raise InputError("select a reference and a predicted segmentation")
    geometry = nodes.reference_geometry(ref_node)
    ref = nodes.segment_arrays(ref_node, geometry)
    pred = nodes.segment_arrays(pred_node, geometry)
    rows = metrics.evaluate(pred, ref, geometry.spacing, match=mapping or "name", distances=distances)
    return rows, pred, ref, geometry


def metrics_table(rows, table_node=None, name: str = "MedSeg metrics"):
    """Fill (or create) a ``vtkMRMLTableNode`` with one row per segment pair."""
    import slicer

    if table_node is None:
        table_node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", slicer.mrmlScene.GenerateUniqueName(name))
    table_node.RemoveAllColumns()
    dicts = [r.to_dict() for r in rows]
    for column in COLUMNS:
        array = table_node.AddColumn()
        array.SetName(column)
    for d in dicts:
        row = table_node.AddEmptyRow()
        for c, column in enumerate(COLUMNS):
            value = d.get(column)
            text = "" if value is None else (f"{value:.6g}" if isinstance(value, float) else str(value))
            table_node.SetCellText(row, c, text)
    return table_node


def save_table_csv(table_node, path: str) -> None:
    """Export a table node to CSV with Slicer's table storage node (atomic)."""
    import slicer

    from ..image import io
    if not str(path).lower().endswith(".csv"):
        raise InputError(f"{path}: use a .csv file name")
    with io.atomic_path(path) as tmp:
        storage = slicer.vtkMRMLTableStorageNode()
        storage.SetFileName(tmp)
        if not storage.WriteData(table_node):
            raise InputError(f"{path}: writing the table failed")


def disagreement_segmentation(rows, pred: dict, ref: dict, geometry, name: str = "Disagreement"):
    """New segmentation with, per evaluated segment, its false positives and false negatives."""
    node = nodes.new_segmentation_node(name, geometry)
    for row in rows:
        p = pred.get(row.pred_segment, np.zeros(geometry.shape, bool))
        r = ref.get(row.segment, np.zeros(geometry.shape, bool))
        nodes.write_segment(node, p & ~r, geometry, f"{row.segment} false positive", FP_COLOR)
        nodes.write_segment(node, r & ~p, geometry, f"{row.segment} false negative", FN_COLOR)
    return node
