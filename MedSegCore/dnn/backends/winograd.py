"""Winograd F(4,3) along the first spatial axis for the 3x3x3 convolutions of a network exported for
OpenVINO: the same function in half the multiply-adds.

OpenVINO's CPU convolutions already run near the cores' peak (bundled U-Net: ~41 GMAC/s per AVX2
core on the 64 -> 64 layer), so fewer multiply-adds is what is left. Along the first spatial axis
(D) a 3-tap convolution over 4 outputs is computed as 6 products of transformed inputs and weights
(Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016), each an ordinary
convolution with a (1, 3, 3) kernel that OpenVINO runs at full speed: 6 x 9 = 54 taps per 4 outputs
instead of 4 x 27 = 108.

The transforms need the D rows 4t + r of each phase r side by side, so the rewritten section keeps
its tensors in *phase order* along D ([rows 4t; rows 4t + 1; rows 4t + 2; rows 4t + 3]). Operations
that do not mix voxels (activations, normalisations over all voxels, 1x1x1 convolutions, sums,
concatenation of channels) work unchanged on phase-ordered tensors; every other operation gets its
input back in the natural order. :func:`rewrite` finds the convolutions and the phase-ordered
regions on the traced graph (``torch.fx``) of the network; a network that cannot be traced is left
as it is. Measured on the bundled U-Net (one 64³ window, one thread): 117 ms instead of 169 ms, logits
within 8e-5 of PyTorch. It trades multiply-adds for memory traffic, so whether it pays depends on
the network and the CPU: ``backends._winograd_choice`` times both exports the first time a network
runs on OpenVINO and records the faster.
"""
from __future__ import annotations

import operator

PHASES = 4
MIN_CHANNELS = 16            # narrower convolutions do not repay the transforms
# F(4,3): input transform B^T (6 x 6), weight transform G (6 x 3), output transform A^T (4 x 6)
_BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
       (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))


def _combine(terms, coefficients):
    out = None
    for term, c in zip(terms, coefficients):
        if c:
            value = term if c == 1 else (-term if c == -1 else term * float(c))
            out = value if out is None else out + value
    return out


def _modules():
    import torch

    class ToPhases(torch.nn.Module):
        """Natural D order -> phase order: phase r (rows 4t + r) picked by a strided depthwise
        convolution (OpenVINO keeps its blocked layout), the phases concatenated along D."""

        def __init__(self, channels):
            super().__init__()
            weight = torch.zeros((PHASES, channels, 1, PHASES, 1, 1))
            for r in range(PHASES):
                weight[r, :, 0, r] = 1.0
            self.register_buffer("weight", weight)
            self.channels = channels

        def forward(self, x):
            return torch.cat([torch.nn.functional.conv3d(x, self.weight[r], stride=(PHASES, 1, 1),
                                                         groups=self.channels) for r in range(PHASES)], 2)

    class FromPhases(torch.nn.Module):
        """Phase order -> natural D order."""

        def forward(self, x):
            n, c, d, h, w = x.shape
            return x.reshape(n, c, PHASES, d // PHASES, h, w).transpose(2, 3).reshape(n, c, d, h, w)

    class WinogradConv3d(torch.nn.Module):
        """``Conv3d`` (3x3x3, stride 1, padding 1) on a phase-ordered input, phase-ordered output:
        F(4,3) along D, the 6 products as (1, 3, 3) convolutions."""

        def __init__(self, conv):
            super().__init__()
            w = conv.weight.detach().double()
            g = torch.tensor(_G, dtype=torch.float64)
            u = torch.einsum("ai,oqijk->aoqjk", g, w).float()            # (6, out, in, 3, 3)
            self.products = torch.nn.ModuleList()
            for a in range(6):
                c = torch.nn.Conv3d(w.shape[1], w.shape[0], (1, 3, 3), padding=(0, 1, 1), bias=False)
                c.weight = torch.nn.Parameter(u[a].unsqueeze(2).contiguous(), requires_grad=False)
                self.products.append(c)
            self.bias = None if conv.bias is None else torch.nn.Parameter(
                conv.bias.detach().reshape(1, -1, 1, 1, 1).clone(), requires_grad=False)

        def forward(self, x):
            t = x.shape[2] // PHASES
            p = torch.split(x, [t] * PHASES, 2)
            zero = torch.zeros_like(p[0][:, :, :1])
            rows = [torch.cat([zero, p[3][:, :, :-1]], 2), p[0], p[1], p[2], p[3],     # x[4t-1] .. x[4t+4]
                    torch.cat([p[0][:, :, 1:], zero], 2)]
            m = [conv(_combine(rows, _BT[a])) for a, conv in enumerate(self.products)]
            out = [_combine(m, _AT[r]) for r in range(PHASES)]
            if self.bias is not None:
                out = [o + self.bias for o in out]
            return torch.cat(out, 2)

    class PhasedSubpixel(torch.nn.Module):
        """A 3D :class:`~.rewrite.SubpixelConvTranspose` fed a phase-ordered input: its convolution
        split by D tap into (1, kH, kW) convolutions, whose narrow outputs (prod(stride) * out
        channels, not the input's) are shifted by the tap's rows and summed; blocks past the input's
        rows come from their few source rows; back to natural order on the narrow result."""

        def __init__(self, subpixel):
            super().__init__()
            self.sub = subpixel
            weight = subpixel.conv.weight.detach()
            self.weights = torch.nn.ParameterList(
                torch.nn.Parameter(weight[:, :, u:u + 1].contiguous(), requires_grad=False)
                for u in range(weight.shape[2]))
            self.from_phases = FromPhases()

        @staticmethod
        def _shifted(parts, j):
            """Phase-ordered rows b - j of the phase-ordered ``parts`` (zero before the first)."""
            out = []
            for r in range(PHASES):
                p = parts[r - j] if r >= j else parts[r - j + PHASES]
                if r < j:
                    p = torch.cat([torch.zeros_like(p[:, :, :1]), p[:, :, :-1]], 2)
                out.append(p)
            return torch.cat(out, 2)

        def forward(self, x):
            sub = self.sub
            d, h, w = x.shape[2:]
            t = d // PHASES
            out_size, blocks = sub.sizes((d, h, w))
            x = torch.nn.functional.pad(x, [sub.taps[2] - 1, max(blocks[2] - w, 0),
                                            sub.taps[1] - 1, max(blocks[1] - h, 0)])
            taps = len(self.weights)
            # a (1, kH, kW) convolution works row by row, so it commutes with the D order: each tap
            # runs over the phase-ordered input once and its narrow output is shifted by the tap's rows
            rows = [torch.nn.functional.conv3d(x, self.weights[taps - 1 - j]) for j in range(taps)]
            y = None
            for j, c in enumerate(rows):
                term = c if j == 0 else self._shifted(torch.split(c, [t] * PHASES, 2), j)
                y = term if y is None else y + term
            slabs = [self.from_phases(y)]
            for b in range(d, blocks[0]):                         # blocks past the last input row
                slab = None
                for j, c in enumerate(rows):
                    row = b - j
                    if 0 <= row < d:
                        k = (row % PHASES) * t + row // PHASES
                        slab = c[:, :, k:k + 1] if slab is None else slab + c[:, :, k:k + 1]
                slabs.append(slab if slab is not None else torch.zeros_like(y[:, :, :1]))
            y = torch.cat(slabs, 2) if len(slabs) > 1 else slabs[0]
            return sub.assemble(y, blocks, out_size)

    return ToPhases, FromPhases, WinogradConv3d, PhasedSubpixel


def _eligible(module, shape) -> bool:
    import torch

    return (type(module) is torch.nn.Conv3d and tuple(module.kernel_size) == (3, 3, 3)
            and tuple(module.stride) == (1, 1, 1) and tuple(module.padding) == (1, 1, 1)
            and tuple(module.dilation) == (1, 1, 1) and module.groups == 1 and module.padding_mode == "zeros"
            and min(module.in_channels, module.out_channels) >= MIN_CHANNELS
            and shape is not None and len(shape) == 5 and shape[2] % PHASES == 0 and shape[2] >= 2 * PHASES)


def _voxelwise_module(module) -> bool:
    """Modules that treat every voxel alike (so a permutation of D commutes with them)."""
    import torch

    pointwise = (torch.nn.PReLU, torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.ELU, torch.nn.GELU, torch.nn.SiLU,
                 torch.nn.Sigmoid, torch.nn.Tanh, torch.nn.Identity, torch.nn.Dropout, torch.nn.Dropout3d,
                 torch.nn.BatchNorm3d, torch.nn.GroupNorm, torch.nn.InstanceNorm3d)
    if isinstance(module, pointwise):
        return True
    if type(module).__name__ == "StagedInstanceNorm":
        return True
    return (type(module) is torch.nn.Conv3d and tuple(module.kernel_size) == (1, 1, 1)
            and tuple(module.stride) == (1, 1, 1) and tuple(module.padding) == (0, 0, 0))


_VOXELWISE_FUNCTIONS = {operator.add, operator.sub, operator.mul}


def _tracer():
    import torch.fx

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return super().is_leaf_module(m, qualname) or type(m).__name__ in (
                "StagedInstanceNorm", "SubpixelConvTranspose")
    return Tracer()


def rewrite(network, example):
    """A copy of ``network`` (traced with ``torch.fx``, shapes from ``example``) whose eligible 3x3x3
    convolutions run as :class:`WinogradConv3d` in phase-ordered regions, or ``network`` itself when
    nothing qualifies or the network cannot be traced."""
    import torch
    import torch.fx
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        graph = _tracer().trace(network)
        traced = torch.fx.GraphModule(network, graph)
        with torch.no_grad():
            ShapeProp(traced).propagate(example)
    except Exception:                               # noqa: BLE001 - untraceable: export it as it is
        return network
    modules = dict(traced.named_modules())

    def shape(node):
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None

    convs = [n for n in graph.nodes if n.op == "call_module" and _eligible(modules[n.target], shape(n.args[0]))]
    if not convs:
        return network
    ToPhases, FromPhases, WinogradConv3d, PhasedSubpixel = _modules()
    phased = set()                                   # nodes whose output is phase-ordered

    def spatial(node):
        s = shape(node) if isinstance(node, torch.fx.Node) else None
        return s is not None and len(s) == 5 and s[2] >= PHASES

    def voxelwise(node) -> bool:
        if node.op == "call_module":
            return _voxelwise_module(modules[node.target])
        if node.op == "call_function" and node.target in _VOXELWISE_FUNCTIONS:
            return True
        if node.op == "call_function" and node.target is torch.cat:
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
            return dim == 1
        return False

    count, cache = [0], {}

    def converted(node, user, to_phases: bool):
        """``node``'s output in the other order (one conversion per node and direction)."""
        if (node, to_phases) not in cache:
            count[0] += 1
            name = f"_winograd_{'to' if to_phases else 'from'}_phases_{count[0]}"
            traced.add_submodule(name, ToPhases(shape(node)[1]) if to_phases else FromPhases())
            with graph.inserting_after(node):
                new = graph.call_module(name, (node,))
            new.meta = dict(node.meta)
            cache[(node, to_phases)] = new
        return cache[(node, to_phases)]

    conv_set = set(convs)
    for node in list(graph.nodes):
        if node.op in ("placeholder", "get_attr") or node in set(cache.values()):
            continue
        inputs = [a for a in node.all_input_nodes if spatial(a)]
        if node in conv_set:
            want = True
        elif (node.op == "call_module" and type(modules[node.target]).__name__ == "SubpixelConvTranspose"
              and modules[node.target].dims == 3 and modules[node.target].taps[0] <= PHASES
              and len(node.all_input_nodes) == 1 and node.all_input_nodes[0] in phased):
            count[0] += 1                            # takes the phase order itself; natural order out
            name = f"_winograd_subpixel_{count[0]}"
            traced.add_submodule(name, PhasedSubpixel(modules[node.target]))
            node.target = name
            continue
        else:
            want = (node.op != "output" and voxelwise(node) and any(a in phased for a in inputs)
                    and len({shape(a)[2:] for a in inputs}) == 1)
        for a in inputs:
            if (a in phased) != want:
                node.replace_input_with(a, converted(a, node, to_phases=want))
        if node in conv_set:
            count[0] += 1
            name = f"_winograd_conv_{count[0]}"
            traced.add_submodule(name, WinogradConv3d(modules[node.target]))
            node.target = name
        if want:
            phased.add(node)
    graph.lint()
    traced.recompile()
    traced.delete_all_unused_submodules()        # the replaced convolutions
    return traced
