"""Config: YAML -> typed dataclasses, with one-line errors naming the dotted key."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from inpainting import tasks
from inpainting.data import EVAL_MODES, TRAIN_RESIZE_MODES
from inpainting.engine.config import DEVICES, ConfigError, config_to_dict
from inpainting.engine.config_parsing import apply_overrides
from inpainting.engine.errors import UserInputError
from inpainting.engine.optim import OPTIMIZERS, SCHEDULES
from inpainting.engine.run import save_config
from inpainting.engine.trainer import AUTOCAST_DTYPES
from inpainting.metrics.baselines import BASELINES
from inpainting.models import MODELS, UPSAMPLING_MODES
from inpainting.models.pconv_unet import NORMS, PREFILLS, VALUE_RANGES
from inpainting.tasks import config_from_dict, load_config
from inpainting.tasks.classification.data import CLASSIFICATION_DATASETS
from inpainting.tasks.classification.models import CLASSIFIER_NAMES, PADDINGS
from inpainting.tasks.classification.padding_demo import CONFIG as PADDING_DEMO_CONFIG
from inpainting.tasks.inpainting.config import InpaintingConfig as Config
from inpainting.tasks.inpainting.data import MASK_SOURCES
from masks import POLARITIES

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

# Every config field that names a choice -> the table of the code that uses the name.
CHOICE_REGISTRIES = {
    "model.name": MODELS,
    "model.upsampling": UPSAMPLING_MODES,
    "model.norm": NORMS,
    "model.prefill": PREFILLS,
    "model.value_range": VALUE_RANGES,
    "train.val_baseline": BASELINES,
    "data.eval_mode": EVAL_MODES,
    "data.train_resize": TRAIN_RESIZE_MODES,
    "masks.source": MASK_SOURCES,
    "masks.polarity": POLARITIES,
    "optim.name": OPTIMIZERS,
    "optim.schedule": SCHEDULES,
    "train.precision": AUTOCAST_DTYPES,
    "train.device": DEVICES,  # the config's own list; resolve_device reads it
    "task": tasks.names(),  # the registry's names
    "classifier.arch": CLASSIFIER_NAMES,
    "classifier.padding": PADDINGS,
    "classifier.dataset": CLASSIFICATION_DATASETS,
}

# Keys that scripts and other tools rely on (issue 5): they must keep these exact names.
FIXED_KEYS = [
    "train.run_dir", "train.max_steps", "train.seed", "train.log_every", "train.val_every",
    "train.ckpt_every", "train.precision", "data.train", "data.val", "data.image_size",
    "data.batch_size", "data.num_workers", "model.depth", "model.base_channels",
    "masks.hole_range", "masks.polarity", "loss.vgg_weights", "optim.lr", "log.progress",
]


CLASSIFICATION = ["task=classification", "data.train=x", "data.val=y"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_empty_file(tmp_path):
    assert load_config(None) == Config()
    assert load_config(write(tmp_path, "")) == Config()
    assert Config().optim.lr == 2e-4 and Config().loss.weights.hole == 6.0


@pytest.mark.parametrize("key", FIXED_KEYS)
def test_fixed_keys_exist(key):
    section, name = key.split(".")
    assert name in {f.name for f in dataclasses.fields(getattr(Config(), section))}


def test_yaml_overrides_only_what_differs(tmp_path):
    cfg = load_config(write(tmp_path, "optim:\n  lr: 1.0e-3\nmodel: {depth: 5}\n"))
    assert cfg.optim.lr == 1e-3 and cfg.model.depth == 5
    assert cfg.optim.betas == (0.9, 0.999) and cfg.model.base_channels == 64


def test_set_overrides_are_parsed_as_yaml(tmp_path):
    path = write(tmp_path, "optim: {lr: 1.0e-3}\n")
    cfg = load_config(path, ["optim.lr=1e-4", "data.image_size=512", "masks.hole_range=[0.1, 0.3]",
                             "log.progress=false", "loss.weights.style_out=0"])
    assert cfg.optim.lr == pytest.approx(1e-4)  # YAML 1.1 reads 1e-4 as a string: accepted
    assert cfg.data.image_size == 512
    assert cfg.masks.hole_range == (0.1, 0.3)
    assert cfg.log.progress is False
    assert cfg.loss.weights.style_out == 0.0 and isinstance(cfg.loss.weights.style_out, float)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.lrr=1"], "unknown key 'optim.lrr' (valid: name, lr, betas, momentum, "
                          "weight_decay, grad_clip, schedule, milestones, gamma)"),
        (["optimizer.lr=1"], "unknown key 'optimizer' (valid: task, optim, train, log, model, "
                             "data, masks, loss)"),
        (["task=classification", "model.depth=3"], "unknown key 'model' (valid: task, optim, "
                                                   "train, log, data, classifier)"),
        (["loss.weights.holes=1"], "unknown key 'loss.weights.holes' (valid: valid, hole, "
                                   "perceptual, style_out, style_comp, tv)"),
    ],
)
def test_unknown_key(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.lr=fast"], "config key 'optim.lr' expects float, got str 'fast'"),
        (["train.max_steps=1.5"], "config key 'train.max_steps' expects int, got float 1.5"),
        (["train.max_steps=true"], "config key 'train.max_steps' expects int, got bool True"),
        (["log.progress=1"], "config key 'log.progress' expects bool, got int 1"),
        (["data.train=12"], "config key 'data.train' expects str, got int 12"),
        (["optim.lr=null"], "config key 'optim.lr' expects float, got NoneType"),
        (["optim=3"], "config key 'optim' expects a mapping of keys, got int"),
        (["masks.hole_range=0.5"],
         "config key 'masks.hole_range' expects list of 2 float, got 0.5"),
        (["optim.milestones=[10, x]"], "config key 'optim.milestones' expects int, got str 'x'"),
        (["optim.lr=.nan"], "config key 'optim.lr' expects a finite float, got nan"),
        (["optim.lr=-.inf"], "config key 'optim.lr' expects a finite float, got -inf"),
        (["masks.hole_range=[0.1, .nan]"],
         "config key 'masks.hole_range' expects a finite float, got nan"),
    ],
)
def test_wrong_type(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.lr=-0.1"], "optim.lr must be > 0, got -0.1"),
        (["data.val_fraction=1.5"], "data.val_fraction must be in (0, 1), got 1.5"),
        (["masks.hole_range=[0.5, 0.2]"],
         "masks.hole_range must be [lo, hi] with 0 <= lo < hi <= 1, got [0.5, 0.2]"),
        (["train.ema=1.0"], "train.ema must be in [0, 1) (0: off), got 1.0"),
        (["train.log_every=0"], "train.log_every must be >= 1, got 0"),
        (["train.precision=fp8"], "unknown train.precision 'fp8' (valid: fp32, bf16, fp16)"),
        (["optim.schedule=linear"],
         "unknown optim.schedule 'linear' (valid: constant, cosine, step)"),
        (["masks.source=folder"], "masks.folder must be set when masks.source is 'folder'"),
        (["masks.source=video"], "masks.folder must be set when masks.source is 'video'"),
        (["data.train_resize=zoom"],
         "unknown data.train_resize 'zoom' (valid: crop, resize, random_resized_crop)"),
        (["data.rrc_scale=[0.0, 1.0]"],
         "data.rrc_scale must be [lo, hi] with 0 < lo <= hi <= 1, got [0.0, 1.0]"),
        (["data.rrc_scale=[0.8, 0.5]"],
         "data.rrc_scale must be [lo, hi] with 0 < lo <= hi <= 1, got [0.8, 0.5]"),
        (["data.decode_cache_mb=-1"], "data.decode_cache_mb must be >= 0 (0: off), got -1"),
        (["data.image_size=100000"], "data.image_size must be in [8, 4096], got 100000"),
        (["data.batch_size=10000000"], "data.batch_size must be in [1, 65536], got 10000000"),
        (["masks.val_count=1000000"], "masks.val_count must be in [1, 100000], got 1000000"),
        (["log.grid_size=1000"], "log.grid_size must be in [1, 64], got 1000"),
        (["train.val_metrics=[psnr, lpips]"], "train.val_metrics: lpips needs downloaded "
         "weights and is not scored during training; use evaluate.py --metrics"),
        (["train.val_metrics=[psnr, sharpness]"],
         "unknown train.val_metrics 'sharpness' (valid: l1, psnr, ssim, grad-ratio)"),
        (["train.val_baseline=opencv-ns,photoshop"],
         "unknown train.val_baseline 'photoshop' (valid: opencv-telea, opencv-ns, patchmatch)"),
        ([*CLASSIFICATION, "classifier.crop_size=100000", "classifier.resize_size=100000"],
         "classifier.crop_size must be in [8, 4096], got 100000"),
        (["data.random_resized_crop=true", "data.train_resize=resize"],
         "data.random_resized_crop: true contradicts data.train_resize: resize; set only "
         "data.train_resize"),
        (["data.image_size=100"],
         "data.image_size 100 must be divisible by 2**model.depth = 256"),
        (["train.max_steps=10", "train.finetune_step=10"],
         "train.finetune_step 10 must be below train.max_steps 10 (0: off)"),
        (["masks.val_bins=0.5-0.1"],
         "masks.val_bins: hole-ratio range (0.5, 0.1] needs lo < hi"),
        ([*CLASSIFICATION, "classifier.dataset=fashion_mnist", "classifier.shift=-1"],
         "classifier.shift must be >= 0 (0: off), got -1"),
        ([*CLASSIFICATION, "classifier.dataset=fashion_mnist", "classifier.train_images=-5"],
         "classifier.train_images must be >= 0 (0: off), got -5"),
        ([*CLASSIFICATION, "classifier.shift=4"],
         "classifier.shift needs classifier.dataset: fashion_mnist"),
        ([*CLASSIFICATION, "classifier.val_images=100"],
         "classifier.val_images needs classifier.dataset: fashion_mnist"),
    ],
)
def test_bad_range(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr", "bad override 'optim.lr': use --set section.key=value"),
        ("=1", "bad override '=1': use --set section.key=value"),
        ("optim..lr=1", "bad override 'optim..lr=1': use --set section.key=value"),
        ("optim.lr=[1", "bad override 'optim.lr=[1': the value is not valid YAML"),
        ("optim.lr.x=1", "bad override 'optim.lr.x=1': 'optim.lr' is not a section"),
    ],
)
def test_bad_override_syntax(override, message):
    with pytest.raises(ConfigError) as info:
        apply_overrides({"optim": {"lr": 1.0}}, [override])
    assert str(info.value) == message


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match=r"^config file '.*nope.yaml' does not exist$"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "optim:\n  lr: 1\n   x: 2\n"))
    assert str(info.value).endswith("is not valid YAML (line 3: mapping values are not allowed "
                                    "here)")
    with pytest.raises(ConfigError, match="must hold a mapping of sections at the top"):
        load_config(write(tmp_path, "- 1\n- 2\n"))
    binary = tmp_path / "weights.yaml"
    binary.write_bytes(b"\x80\x04\x95 a pickle, not YAML")
    with pytest.raises(ConfigError, match=r"config file '.*weights.yaml' is not UTF-8 text"):
        load_config(binary)


def test_errors_are_value_errors_and_one_line():
    with pytest.raises(ValueError) as info:
        load_config(None, ["optim.lrr=1"])
    assert "\n" not in str(info.value)
    assert isinstance(info.value, UserInputError)  # one line and exit code 2 on the command line


def test_round_trip_through_dict_and_yaml(tmp_path):
    cfg = load_config(None, ["optim.milestones=[100, 200]", "masks.hole_range=[0.2, 0.4]",
                             "train.run_dir=runs/x"])
    plain = config_to_dict(cfg)
    # plain types only: yaml.safe_dump refuses tuples and dataclasses
    yaml.safe_dump(plain)
    assert plain["optim"]["milestones"] == [100, 200]
    assert config_from_dict(plain) == cfg
    save_config(cfg, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == cfg


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().optim.lr = 1.0


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.rglob("*.yaml")),
                         ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.data.train, "every shipped config names its training data"
    if cfg.task == "classification":
        assert cfg.data.val and cfg.classifier.arch in path.stem, path
        assert cfg.classifier.padding in path.stem, path
    else:
        assert cfg.data.image_size % 2**cfg.model.depth == 0


def test_shipped_configs_follow_their_recipes():
    names = {p.stem for p in CONFIG_DIR.glob("*.yaml")}
    assert {"demo", "places2_512", "celeba_hq_256", "finetune"} <= names
    demo = load_config(CONFIG_DIR / "demo.yaml")
    assert demo.data.train == "demo" and demo.train.device == "cpu"
    assert demo.loss.vgg_weights == "none"
    paper = load_config(CONFIG_DIR / "places2_512.yaml")
    assert (paper.data.image_size, paper.data.batch_size, paper.model.depth) == (512, 6, 8)
    assert (paper.optim.name, paper.optim.lr, paper.train.finetune_lr) == ("adam", 2e-4, 5e-5)
    assert 0 < paper.train.finetune_step < paper.train.max_steps
    faces = load_config(CONFIG_DIR / "celeba_hq_256.yaml")
    assert faces.model.depth == 7
    # trained on whole resized faces, as it is validated
    assert (faces.data.train_resize, faces.data.eval_mode) == ("resize", "resize")
    finetune = load_config(CONFIG_DIR / "finetune.yaml")
    assert finetune.model.freeze_encoder_bn and finetune.optim.lr == 5e-5
    demo = load_config(PADDING_DEMO_CONFIG)
    assert (demo.classifier.dataset, demo.classifier.arch) == ("fashion_mnist", "small_vgg")
    assert demo.data.train == demo.data.val == "/usr/share/datasets/fashion-mnist"
    assert demo.classifier.shift > 0 and demo.train.device == "cpu"


def _valid_names_of_choice_fields() -> dict[str, list[str]]:
    """Set every string field to a name nobody registers; the fields that answer "unknown
    section.key 'x' (valid: ...)" are choice fields, with the names they accept."""
    found = {}
    for name, base in (("inpainting", []), ("classification", CLASSIFICATION)):
        config_class = tasks.get(name).config_class
        default = load_config(None, base)
        top_level = [("", field) for field in dataclasses.fields(config_class)]
        sections = [(f"{section.name}.", field) for section in dataclasses.fields(config_class)
                    if dataclasses.is_dataclass(getattr(default, section.name))
                    for field in dataclasses.fields(getattr(default, section.name))]
        for prefix, field in top_level + sections:
            if field.type not in (str, "str"):  # "str" under postponed annotations
                continue
            key = f"{prefix}{field.name}"
            try:
                load_config(None, [*base, f"{key}=no-such-name"])
            except ConfigError as error:
                start = f"unknown {key} 'no-such-name' (valid: "
                if str(error).startswith(start):
                    found[key] = str(error)[len(start):-1].split(", ")
    return found


def test_the_older_random_resized_crop_switch_is_the_train_resize_mode(tmp_path):
    older = load_config(None, ["data.random_resized_crop=true"])
    newer = load_config(None, ["data.train_resize=random_resized_crop"])
    assert older == newer and newer.data.random_resized_crop
    assert load_config(None, []).data.train_resize == "crop"
    path = tmp_path / "saved.yaml"
    save_config(newer, path)
    assert load_config(path) == newer


def test_choice_fields_accept_exactly_their_registry():
    found = _valid_names_of_choice_fields()
    assert set(found) == set(CHOICE_REGISTRIES), "a new choice field needs its registry here"
    for key, registry in CHOICE_REGISTRIES.items():
        assert found[key] == list(registry), key


def test_unknown_model_name_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["model.name=unet"])
    assert str(info.value) == "unknown model.name 'unet' (valid: pconv_unet)"


def test_a_folder_or_binary_file_as_config_is_one_line_naming_it(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == (f"config file '{tmp_path}' is a folder; pass a YAML file, "
                               "e.g. configs/demo.yaml")
    for name, content in [("nul.yaml", b"\x00\x01\x02 binary"), ("zip.yaml", b"PK\x03\x04\x80")]:
        binary = tmp_path / name
        binary.write_bytes(content)
        with pytest.raises(ConfigError) as info:
            load_config(binary)
        text = str(info.value)
        assert f"config file '{binary}'" in text and "\n" not in text, text
        assert "YAML" in text, text


def billion_laughs(levels: int = 9) -> str:
    """The "billion laughs" YAML: each level lists the one above 9 times (9**levels values in
    about 650 bytes for 9 levels)."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        name, above = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [{', '.join([f'*{above}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_yaml_aliases_are_refused_before_anything_expands_them(tmp_path):
    """A 650-byte alias bomb used to grow to gigabytes in the override copy; an alias is now
    refused where the YAML is read, in a file or in --set."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs(), encoding="utf-8")
    assert len(bomb.read_bytes()) < 700
    with pytest.raises(ConfigError) as info:
        load_config(bomb, ["optim.lr=1e-4"])
    assert str(info.value) == (f"config file '{bomb}' uses the alias *a (line 2); write the "
                               "values out (configs take no YAML aliases)")
    with pytest.raises(ConfigError, match=r"^bad override 'masks.hole_range=\[&r 0.1, \*r\]': "
                                          r"it uses the alias \*r; write the values out"):
        load_config(None, ["masks.hole_range=[&r 0.1, *r]"])
    anchored = tmp_path / "anchor.yaml"  # an anchor nobody refers to is harmless
    anchored.write_text("optim: &o {lr: 1.0e-3}\n", encoding="utf-8")
    assert load_config(anchored).optim.lr == 1e-3
