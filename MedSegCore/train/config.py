"""Training configuration: a typed dataclass that reads and writes JSON (no torch here).

Every field has a default, so ``{}`` is a valid configuration; a JSON file only lists what it
changes.  Unknown keys and values of the wrong kind raise :class:`ParameterError` naming the field.
Axes are those of the network grid (I, J, K after reorientation to ``orientation``, 'RAS' by
default): axis 0 is left-right, 1 posterior-anterior, 2 inferior-superior.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields

from ..errors import InputError, ParameterError

LOSSES = ("dicece", "dice", "mse")
SCHEDULERS = ("cosine", "plateau", "none")
SAMPLERS = ("classes", "posneg")
SELECTIONS = ("best", "last")


@dataclass
class AugmentConfig:
    """Random augmentation of training patches; each ``*_prob`` is the chance per patch."""

    flip_axes: list | None = None     # network axes (0 = left-right in RAS); None: every axis of the
                                      # network, i.e. [0, 1, 2] in 3D and [0, 1] in 2D
    flip_prob: float = 0.5
    affine_prob: float = 0.3
    rotate_deg: float = 15.0          # 3D: about each axis; 2D: in-plane only
    scale: float = 0.1                # zoom factor drawn from 1 +- scale, per axis
    intensity_scale: float = 0.1      # x * (1 + U(-s, s))   (MONAI RandScaleIntensity)
    intensity_shift: float = 0.1      # x + U(-o, o)         (MONAI RandShiftIntensity)
    intensity_prob: float = 0.5
    gamma: list = field(default_factory=lambda: [0.7, 1.5])      # MONAI RandAdjustContrast range
    gamma_prob: float = 0.3
    noise_std: float = 0.05           # Gaussian noise, std drawn from U(0, noise_std)
    noise_prob: float = 0.2
    bias_coeff: float = 0.3           # smooth multiplicative field exp(poly), |coefficients| <= coeff
    bias_prob: float = 0.3
    rotate90_prob: float = 0.0        # MONAI RandRotate90: k x 90 degrees (k = 1..3) in the plane of
    rotate90_axes: list = field(default_factory=lambda: [0, 1])   # these network axes (0, 1 = axial in RAS)
    deform_prob: float = 0.0          # smooth elastic deformation (MONAI RandSmoothDeform's idea):
    deform_voxels: float = 3.0        # random displacements up to this many voxels on a coarse
    deform_grid: int = 5              # grid of deform_grid^dims control points, interpolated

    def flips(self, dims: int) -> list:
        """The network axes a patch may be flipped along (``flip_axes``, default every axis)."""
        return list(range(dims)) if self.flip_axes is None else [int(a) for a in self.flip_axes]


@dataclass
class TrainConfig:
    """All settings of a training run.  ``patch`` is (I, J, K) voxels for 3D, (I, J) for 2D."""

    # network (monai.networks.nets.UNet); a 2D network is a 3D UNet with 3x3x1 kernels, 2x2x1 strides
    dims: int = 3
    channels: list = field(default_factory=lambda: [16, 32, 64, 128])
    strides: list | None = None       # default: 2 between levels
    num_res_units: int = 2
    norm: str = "instance"
    dropout: float = 0.0
    # data
    spacing: list | None = None       # mm (I, J, K); None: median spacing of the cases (3D), native (2D)
    orientation: str = "RAS"
    normalization: dict = field(default_factory=lambda: {"type": "zscore", "params": {"nonzero": False}})
    val_fraction: float = 0.2
    val_cases: list = field(default_factory=list)
    labels: list = field(default_factory=list)   # optional [{value, name, color}] overriding names/colours
    # patches
    patch: list = field(default_factory=lambda: [64, 64, 64])
    batch_size: int = 2
    samples_per_case: int = 2
    sampler: str = "classes"          # 'classes': equal share per label incl. background; 'posneg'
    pos_fraction: float = 0.5         # sampler 'posneg': share of patches centred on a labelled voxel
    class_ratios: list | None = None  # sampler 'classes': weights per channel (background first)
    steps_per_epoch: int = 0          # 0: one pass over this rank's training cases
    # optimisation
    epochs: int = 50
    loss: str = "dicece"
    lr: float = 1e-4
    weight_decay: float = 1e-5
    scheduler: str = "cosine"
    warmup_fraction: float = 0.0
    min_lr_fraction: float = 0.01
    plateau_patience: int = 5
    plateau_factor: float = 0.5
    patience: int = 20                # early stopping: validations without improvement; 0 = off
    max_minutes: float | None = None
    amp: bool = True                  # bfloat16 autocast on CUDA (ignored on the CPU)
    deterministic: bool = True
    seed: int = 0
    device: str = "auto"
    # validation
    val_every: int = 1
    select: str = "best"              # model written: 'best' validation Dice, or 'last' epoch (validation
    #                                   then only draws the learning curve: a test set picks nothing)
    val_overlap: float = 0.25
    sw_batch: int = 4
    # transfer learning
    init: str | None = None           # 'default', a model folder or a .pt state dict
    freeze_encoder: bool = False
    # model card
    name: str = "MedSeg trained model"
    version: str = "1.0.0"
    description: str = "U-Net trained with medseg train."
    intended_use: str = "Research and demonstration; not for clinical use."
    # tests only: each rank appends 'epoch case_index' lines to <debug_seen_file>.rank<N>
    debug_seen_file: str | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    # -- derived ------------------------------------------------------------------------
    def roi(self) -> list:
        """Network input size (I, J, K); 2D patches get K = 1."""
        p = [int(v) for v in self.patch]
        return p + [1] if self.dims == 2 and len(p) == 2 else p

    def strides_3d(self) -> list:
        """Strides as stored in the model card: ints (3D) or [s, s, 1] per level (2D)."""
        s = self.strides if self.strides is not None else [2] * (len(self.channels) - 1)
        return [[int(v), int(v), 1] if self.dims == 2 else int(v) for v in s]

    def downsampling(self) -> list:
        f = [1, 1, 1]
        for s in self.strides_3d():
            s = s if isinstance(s, list) else [s] * 3
            f = [a * int(b) for a, b in zip(f, s)]
        return f

    def architecture(self) -> dict:
        params = {"spatial_dims": 3, "channels": [int(c) for c in self.channels], "strides": self.strides_3d(),
                  "num_res_units": int(self.num_res_units), "norm": self.norm}
        if self.dropout:
            params["dropout"] = float(self.dropout)
        if self.dims == 2:
            params["kernel_size"] = [3, 3, 1]
            params["up_kernel_size"] = [3, 3, 1]
        return {"type": "monai.UNet", "params": params}

    # -- (de)serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path) -> None:
        from ..image.io import atomic_path

        with atomic_path(str(path)) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: dict, source: str = "training config") -> "TrainConfig":
        if not isinstance(data, dict):
            raise ParameterError(f"{source}: expected a JSON object, got {type(data).__name__}")
        data = {k: v for k, v in data.items() if not k.startswith("_")}      # '_comment' keys are allowed
        aug = data.pop("augment", {}) or {}
        if not isinstance(aug, dict):
            raise ParameterError(f"{source}: augment: expected an object")
        augment = AugmentConfig(**_checked(AugmentConfig, aug, source, "augment."))
        cfg = cls(**_checked(cls, data, source, ""), augment=augment)
        cfg.validate(source)
        return cfg

    def updated(self, **changes) -> "TrainConfig":
        """A validated copy with ``changes`` (None values are ignored)."""
        d = self.to_dict()
        d.update({k: v for k, v in changes.items() if v is not None})
        return TrainConfig.from_dict(d)

    def validate(self, source: str = "training config") -> None:
        errors = []
        if self.dims not in (2, 3):
            errors.append(f"dims: must be 2 or 3, got {self.dims}")
        roi = self.roi()
        if len(roi) != 3 or min(roi) < 1:
            errors.append(f"patch: expected {self.dims} positive sizes, got {self.patch}")
        elif self.dims == 2 and roi[2] != 1:
            errors.append(f"patch: a 2D network takes (I, J) patches, got {self.patch}")
        elif any(r % f for r, f in zip(roi, self.downsampling())):
            errors.append(f"patch: {self.patch} must be divisible by the downsampling "
                          f"{self.downsampling()[:self.dims]} (product of the strides)")
        if len(self.channels) < 2:
            errors.append("channels: at least two levels are needed")
        elif self.strides is not None and len(self.strides) != len(self.channels) - 1:
            errors.append(f"strides: need {len(self.channels) - 1} value(s) for {len(self.channels)} channel levels")
        for name, allowed in (("loss", LOSSES), ("scheduler", SCHEDULERS), ("sampler", SAMPLERS),
                              ("select", SELECTIONS)):
            if getattr(self, name) not in allowed:
                errors.append(f"{name}: {getattr(self, name)!r} is not one of {', '.join(allowed)}")
        for name in ("epochs", "batch_size", "samples_per_case", "val_every", "sw_batch"):
            if int(getattr(self, name)) < 1:
                errors.append(f"{name}: must be at least 1")
        checks = [("lr", self.lr > 0), ("val_fraction", 0 <= self.val_fraction < 1),
                  ("val_overlap", 0 <= self.val_overlap < 1), ("pos_fraction", 0 <= self.pos_fraction <= 1),
                  ("steps_per_epoch", self.steps_per_epoch >= 0), ("patience", self.patience >= 0),
                  ("max_minutes", self.max_minutes is None or self.max_minutes > 0),
                  ("warmup_fraction", 0 <= self.warmup_fraction < 1),
                  ("min_lr_fraction", 0 <= self.min_lr_fraction <= 1)]
        errors += [f"{name}: value out of range" for name, ok in checks if not ok]
        if self.spacing is not None and (len(self.spacing) != 3 or min(self.spacing) <= 0):
            errors.append(f"spacing: expected 3 positive numbers (mm), got {self.spacing}")
        bad_axes = [a for a in self.augment.flips(self.dims) if a not in (0, 1, 2) or (self.dims == 2 and a == 2)]
        if bad_axes:
            errors.append(f"augment.flip_axes: {bad_axes} not allowed (0, 1{', 2' if self.dims == 3 else ''})")
        aug = self.augment
        r90 = list(aug.rotate90_axes)
        if len(r90) != 2 or r90[0] == r90[1] or any(a not in (0, 1, 2) or (self.dims == 2 and a == 2) for a in r90):
            errors.append(f"augment.rotate90_axes: two different network axes expected, got {r90}")
        elif aug.rotate90_prob > 0 and self.roi()[r90[0]] != self.roi()[r90[1]]:
            errors.append("augment.rotate90_axes: the patch must be square in the rotated plane")
        if not 0 <= aug.rotate90_prob <= 1:
            errors.append("augment.rotate90_prob: must be in 0..1")
        if not (0 <= aug.deform_prob <= 1 and aug.deform_voxels >= 0 and aug.deform_grid >= 2):
            errors.append("augment.deform_*: deform_prob in 0..1, deform_voxels >= 0, deform_grid >= 2")
        if len(self.augment.gamma) != 2 or not 0 < self.augment.gamma[0] <= self.augment.gamma[1]:
            errors.append(f"augment.gamma: expected [low, high] with 0 < low <= high, got {self.augment.gamma}")
        if errors:
            raise ParameterError(f"{source} is invalid:\n  " + "\n  ".join(errors))


def _checked(cls, data: dict, source: str, prefix: str) -> dict:
    """``data`` with each value checked against the dataclass field's kind."""
    known = {f.name: f for f in fields(cls) if f.name != "augment"}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ParameterError(f"{source}: unknown setting(s) {', '.join(prefix + u for u in unknown)}; "
                             f"known: {', '.join(sorted(known))}")
    out = {}
    for key, value in data.items():
        kind = str(known[key].type)
        default = getattr(cls(), key)
        ok = True
        if value is None:
            ok = "None" in kind
        elif isinstance(default, bool) or kind == "bool":
            ok = isinstance(value, bool)
        elif kind.startswith("int"):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind.startswith("float"):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif kind.startswith("str"):
            ok = isinstance(value, str)
        elif kind.startswith("list"):
            ok = isinstance(value, (list, tuple))
            value = list(value) if ok else value
        elif kind.startswith("dict"):
            ok = isinstance(value, dict)
        if not ok:
            raise ParameterError(f"{source}: {prefix}{key}: expected {kind.replace(' | None', ' or null')}, "
                                 f"got {json.dumps(value) if _jsonable(value) else type(value).__name__}")
        out[key] = value
    return out


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def load_config(path) -> TrainConfig:
    """Read and validate a training configuration JSON file."""
    path = str(path)
    if not os.path.isfile(path):
        raise InputError(f"training config not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"training config {path} is not valid JSON: {e.msg} (line {e.lineno})") from None
    return TrainConfig.from_dict(data, source=f"training config {os.path.basename(path)}")
