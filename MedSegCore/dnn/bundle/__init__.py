"""MONAI bundles run through their own config, as MONAI's ``ConfigWorkflow`` runs them.

    from MedSegCore.dnn.bundle import bundle_info, load_bundle
    info = bundle_info("spleen_ct_segmentation")        # name, version, authors, sha256 (no torch)
    model = load_bundle("spleen_ct_segmentation", device="cpu", trust=True)
    result = MedSegCore.dnn.predict([(array, geometry)], model)

The bundle's preprocessing, inferer, network and post-processing are its own (:mod:`.runner`);
MedSeg supplies the volume in memory (:mod:`.reader`) and writes the result.  A bundle's config is
code, so the first run of each bundle must be trusted (:mod:`.trust`).  Interactive bundles
(deepedit, vista3d) are refused.  Importing this package does not import torch or MONAI.
"""
from .config import BundleInfo, bundle_info, content_hash, input_channel_names, interactive_reason, is_bundle
from .trust import UntrustedBundleError, is_trusted, question_for, remember, trust_question


def load_bundle(folder, device="cpu", trust=None):
    """Load the bundle in ``folder`` (see :func:`.runner.load_bundle`); returns a BundleModel."""
    from .runner import load_bundle as _load

    return _load(folder, device, trust)


__all__ = ["BundleInfo", "bundle_info", "content_hash", "input_channel_names", "interactive_reason", "is_bundle",
           "load_bundle", "UntrustedBundleError", "is_trusted", "question_for", "remember",
           "trust_question"]
