"""``medseg threshold``: threshold a volume into a Slicer segmentation or a labelmap."""
from __future__ import annotations

import logging

import numpy as np

from ..image import dicom_seg, dicom_source, io
from ..image.atomic import transaction
from ..mrml import dicom_export, nodes, segment_ops
from ..evaluation import overlay
from ..threshold import presets, engine, options
from ..errors import ParameterError
from .common import REGULARIZE_HELP, REGULARIZE_SEG_CONFLICT, check_output, parse_color, to_rgb255

log = logging.getLogger("medseg")
OUTPUTS = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".dcm")


def add_parser(sub):
    p = sub.add_parser(
        "threshold", help="threshold a volume into a segmentation (.seg.nrrd) or labelmap",
        description="Threshold INPUT (NIfTI/NRRD/MHA file or DICOM folder) and write OUT: a Slicer "
                    "segmentation (.seg.nrrd), a labelmap (.nii.gz/.nii/.nrrd) or, for a DICOM series, a "
                    "DICOM SEG (.dcm) referencing it, chosen by extension (-o may be given more than once). "
                    "The range comes from --lower/--upper, --preset, --method or --levels.",
        epilog="Presets: " + "; ".join(p.description + f" [{p.name}]" for p in presets.PRESETS.values()))
    p.add_argument("input", metavar="INPUT")
    p.add_argument("-o", "--output", required=True, action="append", metavar="OUT",
                   help="output .seg.nrrd, .nii.gz, .nii, .nrrd or .dcm (DICOM SEG; DICOM series input only); "
                        "repeat for several")
    rng = p.add_argument_group("range (inclusive)")
    rng.add_argument("--lower", type=float, help="lower threshold (default: volume minimum)")
    rng.add_argument("--upper", type=float, help="upper threshold (default: volume maximum)")
    rng.add_argument("--preset", choices=sorted(presets.PRESETS), metavar="NAME", help="named range (see below)")
    rng.add_argument("--method", metavar="NAME",
                     help="automatic threshold: otsu, huang, isodata, kittler_illingworth, max_entropy, "
                          "moments, renyi, shanbhag, triangle, yen, li (range = threshold .. maximum)")
    rng.add_argument("--levels", type=int, metavar="K", help="multi-Otsu with K classes (2-5): one segment per class")
    rng.add_argument("--invert", action="store_true", help="select voxels outside the range")
    m = p.add_argument_group("mask")
    m.add_argument("--mask", metavar="FILE", help="threshold only inside this mask (.seg.nrrd, DICOM SEG .dcm, "
                                                  "NIfTI or NRRD; resampled onto the volume by nearest neighbour)")
    m.add_argument("--mask-segment", metavar="NAME", help="segment of a .seg.nrrd or .dcm mask to use (default: all)")
    m.add_argument("--mask-as-segment", metavar="NAME",
                   help="also copy the mask (on the volume's grid) into the output as segment NAME")
    c = p.add_argument_group("clean-up")
    c.add_argument("--largest-component", action="store_true", help="keep only the largest island")
    c.add_argument("--min-size", type=float, default=0.0, metavar="MM3", help="remove islands smaller than MM3")
    c.add_argument("--fill-holes", action="store_true", help="fill holes")
    c.add_argument("--per-slice", action="store_true", help="clean up each axial slice (2D) instead of in 3D")
    o = p.add_argument_group("output")
    o.add_argument("--name", help="segment name (default: from the preset or method, else 'Threshold')")
    o.add_argument("--color", metavar="R,G,B", help="segment colour, 0-255 or 0-1")
    o.add_argument("--overlay", metavar="PNG", help="also write a PNG montage of axial slices with the result")
    o.add_argument("--allow-empty", action="store_true", help="write an empty segment instead of failing")
    o.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--series", metavar="UID", help="DICOM series to read when the folder holds several")
    p.add_argument("--regularize", action="store_true", help=REGULARIZE_HELP)
    p.set_defaults(func=run)


def params_from_args(args) -> engine.ThresholdParameters:
    return engine.ThresholdParameters(
        lower=args.lower, upper=args.upper, method=args.method, levels=args.levels, preset=args.preset,
        invert=args.invert, name=args.name, color=parse_color(args.color), allow_empty=args.allow_empty,
        cleanup=engine.CleanupOptions(args.largest_component, args.min_size, args.fill_holes, args.per_slice))


def write_output(path, seg, results, geometry, roi, args) -> None:
    """Write one output file, its kind chosen by extension; ``roi`` is the mask copied in as a segment."""
    ext = io.extension(path)
    if ext == ".seg.nrrd":
        nodes.save_segmentation(seg, path)
    elif ext == dicom_seg.SEG_EXTENSION:
        dicom_export.save_dicom_seg(seg, geometry, path, args.input, segment_ops.threshold_algorithm(),
                                    args.series, "MedSeg threshold")
    else:
        labels = np.zeros(geometry.shape, dtype=np.uint8)
        masks = [r.mask for r in results]
        if roi is not None:
            masks.insert(0, roi)          # the mask first, so threshold labels stay on top
        for value, mask in enumerate(masks, start=1):
            labels[mask] = value
        io.write_volume(labels, geometry, path)


def run(args) -> int:
    params = params_from_args(args)
    options.check_parameters(params)
    if args.mask_as_segment and not args.mask:
        raise ParameterError("--mask-as-segment needs --mask")
    if args.mask_segment and not args.mask:
        raise ParameterError("--mask-segment needs --mask")
    inputs = {"input": args.input, "mask": args.mask}
    outputs = list(dict.fromkeys(args.output))
    if args.regularize and any(dicom_seg.is_seg_path(path) for path in outputs):
        raise ParameterError(REGULARIZE_SEG_CONFLICT)
    for path in outputs:
        check_output(path, OUTPUTS, args.overwrite, inputs=inputs)
        if dicom_seg.is_seg_path(path):
            dicom_seg.check_seg_input(args.input, path)
    if args.overlay:
        check_output(args.overlay, (".png",), args.overwrite, "overlay", inputs=inputs)
    volume = nodes.read_volume_node(args.input, series_uid=args.series, regularize=args.regularize)
    geometry = nodes.geometry_of(volume)
    if any(dicom_seg.is_seg_path(path) for path in outputs):
        dicom_source.series_slices(args.input, geometry, args.series)    # refuse before any work
    roi = segment_ops.mask_from_file(args.mask, geometry, args.mask_segment) if args.mask else None
    seg, results = segment_ops.apply_threshold(volume, params, roi=roi)
    if args.mask_as_segment:
        segment_ops.copy_mask_as_segment(volume, roi, args.mask_as_segment, seg)
    for r in results:
        log.info("%s: %g .. %g%s -> %d voxels, %.3f mL", r.name, r.lower, r.upper,
                 " (inverted)" if params.invert else "", r.voxels, r.volume_ml)
    with transaction():                   # every output and the overlay, or none of them
        for path in outputs:
            write_output(path, seg, results, geometry, roi if args.mask_as_segment else None, args)
        if args.overlay:
            array, _ = nodes.volume_array(volume)
            layers = [(r.mask, to_rgb255(r.color or nodes.DEFAULT_COLORS[i % len(nodes.DEFAULT_COLORS)]), 0.5)
                      for i, r in enumerate(results)]
            overlay.montage(array, layers, args.overlay)
    for path in outputs:
        log.info("wrote %s", path)
    if args.overlay:
        log.info("wrote %s", args.overlay)
    return 0
