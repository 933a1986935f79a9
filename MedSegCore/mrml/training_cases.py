"""Training from the Slicer scene: cases from segmentation nodes, and a live learning curve as
table and plot nodes."""
from __future__ import annotations

from . import nodes
from ..errors import InputError


def source_volume(segmentation_node):
    """The volume a segmentation was drawn on (its reference geometry volume)."""
    volume = segmentation_node.GetNodeReference(segmentation_node.GetReferenceImageGeometryReferenceRole())
    if volume is None or not volume.IsA("vtkMRMLScalarVolumeNode"):
        raise InputError(f"segmentation '{segmentation_node.GetName()}' has no source volume; select one for it "
                         "in the Segment Editor first")
    return volume


def cases_from_segmentations(segmentation_nodes) -> list:
    """[(name, image, Geometry, {segment name: mask})], one case per segmentation node.  Segment
    names become labels: the same name is the same label in every case."""
    if not segmentation_nodes:
        raise InputError("select at least one segmentation (with its source volume) to train on")
    cases = []
    for node in segmentation_nodes:
        volume = source_volume(node)
        image, geometry = nodes.volume_array(volume)
        masks = nodes.segment_arrays(node, volume)
        if not masks or not any(m.any() for m in masks.values()):
            raise InputError(f"segmentation '{node.GetName()}' has no labelled voxels")
        cases.append((node.GetName(), image.copy(), geometry, masks))
    names = [sorted(c[3]) for c in cases]
    if any(n != names[0] for n in names):
        detail = "; ".join(f"{c[0]}: {', '.join(sorted(c[3]))}" for c in cases)
        raise InputError(f"all training cases need the same segment names ({detail})")
    return cases


def learning_curve_nodes(history, table_node=None, chart_node=None):
    """Fill a table (epoch, loss, mean validation Dice) and a plot chart showing both; returns both."""
    import slicer

    scene = slicer.mrmlScene
    if table_node is None:
        table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName("MedSeg training"))
    table_node.RemoveAllColumns()
    columns = [table_node.AddColumn(slicer.vtkDoubleArray() if False else None) for _ in range(3)]
    for column, name in zip(columns, ("epoch", "loss", "validation Dice")):
        column.SetName(name)
    for row in history:
        dice = row.get("val_dice") or {}
        mean = sum(dice.values()) / len(dice) if dice else float("nan")
        r = table_node.AddEmptyRow()
        for c, value in enumerate((row.get("epoch", 0), row.get("loss") or float("nan"), mean)):
            table_node.SetCellText(r, c, f"{value:.6g}")
    if chart_node is None:
        chart_node = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", scene.GenerateUniqueName("MedSeg training curve"))
        chart_node.SetXAxisTitle("epoch")
        for name, column in (("loss", "loss"), ("validation Dice", "validation Dice")):
            series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", name)
            series.SetAndObserveTableNodeID(table_node.GetID())
            series.SetXColumnName("epoch")
            series.SetYColumnName(column)
            series.SetPlotType(series.PlotTypeScatter)
            chart_node.AddAndObservePlotSeriesNodeID(series.GetID())
    return table_node, chart_node
