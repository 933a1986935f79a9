"""``medseg info``: what a volume file holds."""
from __future__ import annotations

import numpy as np

from ..image import io
from .common import REGULARIZE_HELP


def add_parser(sub):
    p = sub.add_parser("info", help="print size, spacing, orientation and intensity range of a volume",
                       description="Print a volume's size, spacing, orientation (RAS axis codes), origin "
                                   "and intensity range. INPUT is a NIfTI/NRRD/MHA file or a DICOM folder.")
    p.add_argument("input", metavar="INPUT")
    p.add_argument("--series", metavar="UID", help="DICOM series to read when the folder holds several")
    p.add_argument("--regularize", action="store_true", help=REGULARIZE_HELP)
    p.set_defaults(func=run)


def run(args) -> int:
    array, g = io.read_volume(args.input, args.series, args.regularize)
    print(f"file:        {args.input}")
    print(f"size:        {g.size[0]} x {g.size[1]} x {g.size[2]} voxels (I x J x K)")
    print(f"spacing:     {' x '.join(f'{s:g}' for s in g.spacing)} mm")
    print(f"orientation: {g.axis_codes()}{' (oblique)' if g.is_oblique() else ''}")
    print(f"origin:      {', '.join(f'{o:g}' for o in g.origin)} mm (RAS)")
    print(f"voxel type:  {array.dtype}")
    print(f"intensity:   {np.min(array):g} .. {np.max(array):g} (mean {np.mean(array, dtype=np.float64):g})")
    return 0
