"""The weight files of the metric networks, found offline: never downloaded at run time.

LPIPS and the Inception metrics (FID, KID, IS, P-IDS/U-IDS) need pretrained weights that their
reference libraries download on first use. Here each file is looked up where those libraries keep
it (the torch hub cache, ``torch.hub.get_dir()/checkpoints``, or the package that ships it), or
taken from ``evaluate.py --metric-weights NAME=PATH``. A missing file is an
``EnvironmentProblem`` (exit 3) raised before any work, one line naming the file, its URL and
sha256, where it was looked for and ``--metric-weights``.

A file found in its usual place must have the published sha256 (else it is a broken download);
a file given by path may differ (a fine-tuned or random-weight network, as the tests use), with
a warning that its scores are not comparable with published ones.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import torch
from torch import Tensor

from inpainting.engine.checkpoint import unreadable_reason
from inpainting.engine.errors import EnvironmentProblem, UserInputError
from inpainting.models.losses.vgg import imagenet_cache_file

__all__ = [
    "WEIGHT_FILES",
    "ResolvedWeights",
    "WeightFile",
    "check_keys",
    "file_sha256",
    "load_state_dict",
    "parse_metric_weights",
    "resolve_weights",
]

logger = logging.getLogger(__name__)


def _hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _package_file(package: str, *parts: str) -> Path | None:
    """A file shipped inside an installed package, found without importing it."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)), *parts)


@dataclass(frozen=True)
class WeightFile:
    """One published weight file.

    Attributes:
        name: The NAME of ``--metric-weights NAME=PATH``.
        description: What it is, for messages.
        filename: Its published file name.
        url: Where it is published.
        sha256: The published file's sha256.
        places: Where its libraries keep it, most usual first (paths, some may be None).
    """

    name: str
    description: str
    filename: str
    url: str
    sha256: str
    places: Callable[[], Iterable[Path | None]]


WEIGHT_FILES: dict[str, WeightFile] = {
    weights.name: weights for weights in (
        WeightFile(
            "inception", "the FID Inception-v3 (TensorFlow's 2015-12-05 graph, pytorch-fid's "
            "and torch-fidelity's port)", "pt_inception-2015-12-05-6726825d.pth",
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth",
            "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
            # pytorch-fid's name, then torch-fidelity's for the same bytes
            lambda: (_hub_checkpoints() / "pt_inception-2015-12-05-6726825d.pth",
                     _hub_checkpoints() / "weights-inception-2015-12-05-6726825d.pth"),
        ),
        WeightFile(
            "vgg16", "torchvision's ImageNet VGG-16 (IMAGENET1K_V1; the paper's loss uses the "
            "same file)", "vgg16-397923af.pth",
            "https://download.pytorch.org/models/vgg16-397923af.pth",
            "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
            lambda: (imagenet_cache_file(),),
        ),
        WeightFile(
            "lpips-vgg", "LPIPS v0.1's linear weights for VGG (shipped by the lpips package)",
            "vgg.pth",
            "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/"
            "vgg.pth",
            "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
            lambda: (_package_file("lpips", "weights", "v0.1", "vgg.pth"),
                     _package_file("torchmetrics", "functional", "image", "lpips_models",
                                   "vgg.pth")),
        ),
    )
}


@dataclass(frozen=True)
class ResolvedWeights:
    """A weight file found on disk, with its sha256 (part of the feature-cache key)."""

    name: str
    path: Path
    sha256: str

    @property
    def official(self) -> bool:
        return self.sha256 == WEIGHT_FILES[self.name].sha256


def parse_metric_weights(items: Iterable[str]) -> dict[str, Path]:
    """``["inception=/w/pt_inception.pth", ...]`` -> ``{"inception": Path(...)}``.

    Raises:
        UserInputError: an item is not NAME=PATH, names an unknown file or repeats a name.
    """
    given: dict[str, Path] = {}
    valid = ", ".join(WEIGHT_FILES)
    for item in items:
        name, sep, path = item.partition("=")
        name = name.strip()
        if not sep or not path.strip():
            raise UserInputError(f"--metric-weights {item!r} must be NAME=PATH (NAME: {valid})")
        if name not in WEIGHT_FILES:
            raise UserInputError(f"--metric-weights: unknown weights {name!r} (valid: {valid})")
        if name in given:
            raise UserInputError(f"--metric-weights {name} is given twice")
        given[name] = Path(path.strip()).expanduser()
    return given


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _missing(weights: WeightFile, looked: list[Path], metrics: str) -> EnvironmentProblem:
    places = ", ".join(str(path) for path in looked) or "nowhere (no package ships it here)"
    target = looked[0] if looked else Path(weights.filename)
    return EnvironmentProblem(
        f"{metrics} needs {weights.filename}, {weights.description}, sha256 {weights.sha256}; "
        f"not found in {places}. Download {weights.url} to {target} (on an offline machine: "
        f"elsewhere, then copy it), or pass --metric-weights {weights.name}=PATH"
    )


def resolve_weights(name: str, given: Path | None, metrics: str) -> ResolvedWeights:
    """Find one weight file: ``given`` (from ``--metric-weights``) or its usual places.

    Args:
        name: A key of :data:`WEIGHT_FILES`.
        given: The user's file, or None to search the usual places.
        metrics: The metrics that need it, for the messages (``"fid, kid"``).

    Returns:
        The file and its sha256.

    Raises:
        EnvironmentProblem: The file is nowhere (the message says what to download where).
        UserInputError: ``given`` does not exist, or a file in a usual place has another sha256
            than the published one (a torn download).
    """
    weights = WEIGHT_FILES[name]
    if given is not None:
        if not given.is_file():
            raise UserInputError(f"--metric-weights {name}={given}: no such file")
        resolved = ResolvedWeights(name, given, file_sha256(given))
        if not resolved.official:
            logger.warning("%s weights %s are not the published %s (sha256 %s...): %s scores "
                           "are not comparable with published ones", name, given,
                           weights.filename, weights.sha256[:12], metrics)
        return resolved
    looked = [path for path in weights.places() if path is not None]
    for path in looked:
        if path.is_file():
            digest = file_sha256(path)
            if digest != weights.sha256:
                raise UserInputError(
                    f"{path} has sha256 {digest}, not the published {weights.sha256} of "
                    f"{weights.url} (a torn download?); delete it and download it again, or "
                    f"pass --metric-weights {name}=PATH")
            return ResolvedWeights(name, path, digest)
    raise _missing(weights, looked, metrics)


def load_state_dict(weights: ResolvedWeights) -> dict[str, Tensor]:
    """Read a weight file as a plain state dict (``torch.load(weights_only=True)``, CPU).

    Raises:
        UserInputError: The file is not a torch file or holds no state dict (one line).
    """
    try:
        state = torch.load(weights.path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as error:  # not a torch file, truncated zip, a pickled module: no common type
        raise UserInputError(
            f"{weights.name} weights {weights.path} cannot be read as a state dict "
            f"({unreadable_reason(Path(weights.path), error)}); give a saved state dict "
            f"like {WEIGHT_FILES[weights.name].filename}"
        ) from error
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserInputError(f"{weights.name} weights {weights.path} hold no state dict "
                             f"(got {type(state).__name__})")
    return state


def check_keys(state: dict[str, Tensor], expected: dict[str, Tensor], weights: ResolvedWeights,
               ignore: Callable[[str], bool] = lambda key: False) -> None:
    """Raise a one-line UserInputError unless ``state`` has ``expected``'s keys and shapes."""
    keys = {key for key in state if not ignore(key)}
    missing = sorted(set(expected) - keys)
    unexpected = sorted(keys - set(expected))
    wrong = sorted(key for key in set(expected) & keys if state[key].shape != expected[key].shape)
    problems = [f"{label} {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
                for label, items in (("missing", missing), ("unexpected", unexpected),
                                     ("wrong shapes of", wrong)) if items]
    if problems:
        raise UserInputError(
            f"{weights.name} weights {weights.path} are not "
            f"{WEIGHT_FILES[weights.name].description}: {'; '.join(problems)}")

