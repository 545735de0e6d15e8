"""One typed config per run: `TrainConfig`, loaded from a recipe (a TOML file in `recipes/`, or any TOML file)
and overridden field by field from the command line (`--set field=value`), with a type check on every value.

Recipe files are flat `field = value` tables, plus two sub-tables: `[augmentation]` (fields of
`papernets.data.Augmentation`, over the dataset's default) and `[model_options]` (keyword options of the model
builder). On the command line these read `--set augmentation.flip=false` and `--set model_options.dropout=0.3`.
A recipe may also adjust fields for some models: `[models."lenet5*"]` holds fields applied, after the rest of
the recipe and before the command line, when the model's name matches the fnmatch pattern. A recipe with
`base = "other-recipe"` holds only what differs from that recipe (`read_recipe`).

Resolving a recipe for one run (`load_config`) keeps the recipe's intent when the command line changes it,
and records each change in `adjustments` (printed at the start of the run, saved in config.json):
- the schedule keeps its shape when the run's length changes: milestones and step_size scale with
  `--epochs` (warm-up given as `warmup_fraction` scales by itself; `warmup_steps` is a fixed count);
- a linear warm-up keeps its start-to-peak ratio when `--lr` changes the peak;
- the data set's label constraints win over the recipe's augmentation: no mirroring where a mirrored image
  shows another class (MNIST);
- `pretrained` (torchvision weights) keeps a large-image model's full-size stem on small images.

Each field declares its kind (`FieldKind`): what it means for a resumed run and for `compare` is read from
here. The config sits below training and analysis, which both read it.
"""

import copy
import dataclasses
import enum
import fnmatch
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from papernets.errors import ConfigError

RECIPES_DIR = Path(__file__).parent / "recipes"

OPTIMIZERS = ("sgd", "adamw", "rmsprop", "sdlm")
LOSSES = ("cross_entropy", "map")
SCHEDULES = ("constant", "step", "multistep", "piecewise", "cosine", "linear", "plateau")
SCHEDULE_UNITS = ("epoch", "iteration")
WARMUP_SHAPES = ("linear", "constant")
DEVICES = ("auto", "cpu", "cuda")
AMP_MODES = ("auto", "bf16", "off")
AUGMENTATION_FIELDS = {"pad": int, "crop": bool, "flip": bool, "cutout": int}

# Ranges of the numeric fields, [low, high] inclusive: beyond them a value is a mistake, and some would allocate
# gigabytes or crash a library (numpy seeds are 32-bit). Fields with a tighter rule are checked in `validate`.
BILLION = 10**9
FIELD_RANGES = {
    "seed": (0, 2**32 - 1), "epochs": (0, 100_000), "iterations": (0, BILLION), "batch_size": (1, 65_536),
    "val_size": (0, BILLION), "train_size": (0, BILLION), "test_size": (0, BILLION),
    "lr": (0.0, 100.0), "momentum": (0.0, 1.0), "weight_decay": (0.0, 1.0), "depthwise_weight_decay": (0.0, 1.0),
    "adam_betas": (0.0, 1.0), "rmsprop_decay": (0.0, 1.0), "optimizer_eps": (1e-30, 1.0),
    "milestones": (0.0, BILLION), "lr_values": (0.0, 100.0), "gamma": (0.0, 1.0), "step_size": (0, BILLION),
    "final_lr_fraction": (0.0, 1.0), "warmup_steps": (0, BILLION), "warmup_fraction": (0.0, 1.0), "warmup_lr": (0.0, 100.0),
    "plateau_patience": (1, 1_000_000), "plateau_max_reductions": (0, 1000), "label_smoothing": (0.0, 1.0),
    "aux_loss_weights": (0.0, 100.0), "distill_temperature": (1e-3, 1000.0), "distill_alpha": (0.0, 1.0),
    "threads": (0, 1024), "checkpoint_every_steps": (0, BILLION), "log_every_steps": (1, BILLION),
    "sdlm_mu": (1e-12, 100.0), "sdlm_samples": (1, 1_000_000), "map_rubbish_j": (0.0, 1000.0),
}
AUGMENTATION_RANGES = {"pad": (0, 64), "cutout": (0, 256)}  # pixels; also at most the image side (engine)
MAX_PATH_CHARACTERS = 4096  # Linux PATH_MAX
MAX_NAME_CHARACTERS = 200   # a file name component (the file system's limit is 255 bytes)
# Options every model takes from the dataset, never from the config.
DATASET_MODEL_OPTIONS = ("num_classes", "in_channels", "input_size")


class FieldKind(enum.Enum):
    EXPERIMENT = "experiment"  # what is trained: compare groups runs by it; a resumed run keeps it
    EXECUTION = "execution"    # how the run computes, not what: compare ignores it; a resumed run keeps it
    RESUMABLE = "resumable"    # where it runs, how it reports, how long it trains: a resumed run may change it


def _field(kind: FieldKind, default, factory):
    if factory is not None:
        return field(default_factory=factory, metadata={"kind": kind})
    return field(default=default, metadata={"kind": kind})


def experiment(default=None, *, factory=None):
    return _field(FieldKind.EXPERIMENT, default, factory)


def execution(default=None, *, factory=None):
    return _field(FieldKind.EXECUTION, default, factory)


def resumable(default=None, *, factory=None):
    return _field(FieldKind.RESUMABLE, default, factory)


@dataclass
class TrainConfig:
    """Every field says its kind (`experiment`, `execution` or `resumable`, see `FieldKind`): the resume
    policy, `compare` and the command line read what a field means from here."""

    # What to train on what.
    model: str = experiment("")
    dataset: str = experiment("")
    model_options: dict = experiment(factory=dict)  # keyword options of the model builder
    pretrained: str = experiment("")  # a torchvision state dict (.pth) to start from; the head is replaced
    recipe: str = experiment("")  # the recipe name or file this config came from
    source: str = experiment("")  # the paper or note the recipe follows
    seed: int = experiment(0)  # compare treats runs that differ only in their seed as repeats

    # Data.
    data_dir: str | None = resumable(None)
    download: bool = resumable(False)
    val_size: int = experiment(5000)  # images carved from the training set for validation (0: none)
    train_size: int = experiment(0)  # use only the first N training images after the split (0: all)
    test_size: int = experiment(0)  # use only the first N test images (0: all)
    augmentation: dict = experiment(factory=dict)  # over data.default_augmentation(dataset)
    eval_tta_flip: bool = experiment(False)  # evaluate on the image and its mirror, averaging the logits

    # Length: exactly one of the two is positive.
    epochs: int = resumable(0)
    iterations: int = resumable(0)

    # Optimizer.
    batch_size: int = experiment(128)  # global batch (split across ranks under torchrun)
    optimizer: str = experiment("sgd")
    lr: float = experiment(0.1)
    momentum: float = experiment(0.9)  # SGD momentum; RMSprop momentum
    nesterov: bool = experiment(False)  # SGD only
    weight_decay: float = experiment(5e-4)
    no_weight_decay_on_bn_bias: bool = experiment(False)  # no decay on 1-dimensional parameters (BN scales, biases)
    depthwise_weight_decay: float | None = experiment(None)  # decay on depthwise conv kernels (None: weight_decay)
    adam_betas: list[float] = experiment(factory=lambda: [0.9, 0.999])
    rmsprop_decay: float = experiment(0.9)  # RMSprop's moving-average factor of squared gradients
    optimizer_eps: float = experiment(1e-8)
    sdlm_mu: float = experiment(0.02)  # sdlm: step size lr / (sdlm_mu + h_kk) (LeCun et al. 1998, Appendix C)
    sdlm_samples: int = experiment(500)  # sdlm: training images h_kk is estimated on before each epoch

    # Learning-rate schedule. Milestones and step sizes count `schedule_unit`s (fractions allowed: they scale
    # with the run's length); warm-up counts iterations or a fraction of the run.
    schedule: str = experiment("constant")
    schedule_unit: str = experiment("epoch")
    milestones: list[float] = experiment(factory=list)  # multistep, piecewise
    lr_values: list[float] = experiment(factory=list)  # piecewise: one more value than milestones
    gamma: float = experiment(0.1)  # step, multistep, plateau: lr factor
    step_size: float = experiment(0)  # step: units between two lr changes
    final_lr_fraction: float = experiment(0.0)  # cosine, linear: lr at the end, as a fraction of lr
    warmup_steps: int = experiment(0)  # iterations of warm-up before the schedule starts (a fixed count)
    warmup_fraction: float = experiment(0.0)  # or: warm-up as this fraction of the run's iterations
    warmup_lr: float = experiment(0.0)  # lr at the start of warm-up
    warmup_shape: str = experiment("linear")  # linear: warmup_lr rising to lr; constant: warmup_lr throughout
    plateau_patience: int = experiment(2)  # plateau: epochs without a better val accuracy before lr *= gamma
    plateau_max_reductions: int = experiment(3)

    # Loss.
    loss: str = experiment("cross_entropy")  # or "map": Eq. (9) of LeCun et al. 1998, for an RBF output
    map_rubbish_j: float = experiment(1.0)  # map: the constant j of Eq. (9)'s "rubbish class" term e^-j
    label_smoothing: float = experiment(0.0)
    aux_loss_weights: list[float] = experiment(factory=list)  # empty: the model's own aux_loss_weights
    teacher: str = experiment("")  # checkpoint of a teacher for Hinton distillation
    distill_temperature: float = experiment(4.0)
    distill_alpha: float = experiment(0.9)  # weight of the distillation term; 1 - alpha on the hard labels

    # Execution.
    device: str = resumable("auto")
    amp: str = execution("auto")  # bf16 autocast where the hardware has bf16 arithmetic
    channels_last: bool = execution(False)
    compile: bool = execution(False)
    threads: int = resumable(0)  # torch threads per process (0: all cores, shared among local ranks)
    deterministic: bool = execution(False)  # torch.use_deterministic_algorithms(True)

    # Run folder and output.
    output: str = resumable("runs")
    run_name: str = execution("")  # default <model>-<dataset>-<YYYYmmdd-HHMMSS>
    checkpoint_every_steps: int = resumable(0)  # also checkpoint inside epochs (0: at the end of each epoch only)
    log_every_steps: int = resumable(50)  # a row of steps.csv (and TensorBoard's step curves) every N steps
    quiet: bool = resumable(False)
    report: bool = resumable(True)
    html: bool = resumable(False)
    tensorboard: bool = resumable(False)

    # Set by load_config: what fitting the recipe to this run changed, and why (follows from the fields above).
    adjustments: list[str] = execution(factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FIELD_TYPES = typing.get_type_hints(TrainConfig)
FIELD_KINDS = {config_field.name: config_field.metadata["kind"] for config_field in dataclasses.fields(TrainConfig)}


def fields_of_kind(*kinds: FieldKind) -> set[str]:
    return {name for name, kind in FIELD_KINDS.items() if kind in kinds}


def list_recipes() -> list[str]:
    return sorted(path.stem for path in RECIPES_DIR.glob("*.toml"))


def default_recipe(dataset: str | None) -> str | None:
    """The data set's fast recipe (`fast-<dataset>`), used when no recipe is named; None where there is none."""
    return f"fast-{dataset}" if dataset and (RECIPES_DIR / f"fast-{dataset}.toml").is_file() else None


def recipe_path(recipe: str) -> Path:
    """A recipe name (`resnet-cifar-he2015`) or the path of a TOML file."""
    named = RECIPES_DIR / f"{recipe}.toml"
    if named.is_file():
        return named
    path = Path(recipe)
    if path.suffix == ".toml" and path.is_file():
        return path
    raise ConfigError(f"Unknown recipe {recipe!r}: pass one of {', '.join(list_recipes())} or a .toml file.")


def read_recipe(recipe: str, derived: tuple[str, ...] = ()) -> dict:
    """The recipe's fields. A recipe with `base = "other-recipe"` holds only what differs from that one: its
    fields replace the base's, and its tables ([augmentation], [models."lenet5*"]) replace the base's key by key."""
    path = recipe_path(recipe)
    try:
        values = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"Recipe {path} cannot be read as TOML ({error}); fix the file.") from None
    except RecursionError:  # arrays or tables nested thousands deep: no recipe looks like that
        raise ConfigError(f"Recipe {path} nests arrays or tables too deeply to read; fix the file.") from None
    base = values.pop("base", None)
    if base is None:
        return values
    if not isinstance(base, str):
        raise ConfigError(f"Recipe {path}: base must be another recipe's name or .toml file; fix the file.")
    if base in derived or base == recipe:
        raise ConfigError(f"Recipe {path}: its bases form a loop ({' -> '.join((*derived, recipe, base))}); fix "
                          "the file.")
    return over_base(read_recipe(base, (*derived, recipe)), values)


def over_base(base: dict, values: dict) -> dict:
    """`values` over `base`, tables merged key by key; a warm-up given in one kind (steps or fraction) replaces
    the base's warm-up of the other kind."""
    merged = dict(base)
    if {"warmup_steps", "warmup_fraction"} & values.keys():
        merged.pop("warmup_steps", None)
        merged.pop("warmup_fraction", None)
    for key, value in values.items():
        both_tables = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = over_base(base[key], value) if both_tables else value
    return merged


def type_name(expected) -> str:
    return getattr(expected, "__name__", None) or str(expected).replace("typing.", "")


def check_type(name: str, value, expected):
    """`value` converted to the field's type (an int where a float is expected), or a ConfigError."""
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(expected):
            return None
        options = [option for option in typing.get_args(expected) if option is not type(None)]
        return check_type(name, value, options[0])
    if origin is list:
        (item_type,) = typing.get_args(expected)
        if not isinstance(value, list):
            raise ConfigError(f"{name} must be a list of {type_name(item_type)}, e.g. [1, 2]; got {value!r}.")
        return [check_type(f"{name}[{index}]", item, item_type) for index, item in enumerate(value)]
    if expected is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a table of options; got {value!r}.")
        return dict(value)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number; got {value!r}.")
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"{name} must be of type {type_name(expected)}; got {value!r}.")
    return value


def parse_value(text: str):
    """A command-line value as TOML reads it (`0.1`, `true`, `[1, 2]`), else the text itself (`adamw`)."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text
    except RecursionError:
        raise ConfigError(f"--set value {text[:20]}... nests arrays too deeply; pass a flat value.") from None


def parse_overrides(pairs: list[str]) -> dict:
    """`["lr=0.05", "augmentation.flip=false"]` -> `{"lr": 0.05, "augmentation": {"flip": False}}`."""
    overrides: dict = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        key = key.strip()
        if not separator or not key:
            raise ConfigError(f"--set takes field=value, got {pair!r}; e.g. --set lr=0.05.")
        table, dot, option = key.partition(".")
        if dot:
            table_values = overrides.setdefault(table, {})
            if not isinstance(table_values, dict):
                raise ConfigError(f"--set gives {table} a value and also sets {key!r} inside it; set one or the other.")
            table_values[option] = parse_value(text.strip())
        else:
            overrides[key] = parse_value(text.strip())
    return overrides


def apply(values: dict, config: TrainConfig, origin: str) -> TrainConfig:
    """Set fields from `values` (a recipe or overrides), checking names and types; tables merge."""
    for name, value in values.items():
        if name not in FIELD_TYPES:
            close = [field_name for field_name in FIELD_TYPES if field_name.startswith(name[:4])]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"{origin}: {name!r} is not a training config field{hint}; "
                              "`papernets train --help` lists them and --print-config shows their values.")
        if name == "augmentation":
            value = {**config.augmentation, **check_augmentation(value, origin)}
        elif name == "model_options":
            value = {**config.model_options, **check_model_options(value, origin)}
        setattr(config, name, check_type(f"{origin}: {name}", value, FIELD_TYPES[name]))
    return config


def check_range(name: str, value, origin: str = "config") -> None:
    """A value within its field's range (every item of a list field); a path short enough for the file system."""
    if name in FIELD_RANGES and value is not None:
        low, high = FIELD_RANGES[name]
        if any(not low <= item <= high for item in (value if isinstance(value, list) else [value])):
            raise ConfigError(f"{origin}: {name} must lie in [{low}, {high}]; got {value!r}.")
    if isinstance(value, str) and ("\0" in value or len(value) > MAX_PATH_CHARACTERS):
        raise ConfigError(f"{origin}: {name} must be at most {MAX_PATH_CHARACTERS} characters without NUL; "
                          f"got {len(value)} characters.")
    if name == "output" and any(len(part.encode()) > MAX_NAME_CHARACTERS for part in Path(value).parts):
        raise ConfigError(f"{origin}: every folder name in output must be at most {MAX_NAME_CHARACTERS} bytes; "
                          "pass a shorter --output.")
    if name == "run_name" and value and (len(value.encode()) > MAX_NAME_CHARACTERS or value in (".", "..")
                                         or "/" in value or "\\" in value):
        raise ConfigError(f"{origin}: run_name {value[:40]!r} must be one folder name inside --output (no '/', "
                          f"not '.' or '..', at most {MAX_NAME_CHARACTERS} bytes); pass a plain name.")


def check_model_options(values, origin: str) -> dict:
    """Model options: names a model takes from its config, with plain values (a number, a string, a flag or a
    flat list of them); the dataset's class count and image size are never options."""
    values = check_type(f"{origin}: model_options", values, dict)
    for name, value in values.items():
        if name in DATASET_MODEL_OPTIONS:
            raise ConfigError(f"{origin}: model_options.{name} comes from the dataset and cannot be set; drop it "
                              "(choose the dataset with --dataset).")
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, (bool, int, float, str)) for item in items) or (
                any(isinstance(item, float) and not math.isfinite(item) for item in items)):
            raise ConfigError(f"{origin}: model_options.{name} must be a finite number, a string, true/false or a "
                              f"flat list of them; got {str(value)[:40]}.")
    return dict(values)


def check_augmentation(values, origin: str) -> dict:
    if not isinstance(values, dict):
        raise ConfigError(f"{origin}: augmentation must be a table of {', '.join(AUGMENTATION_FIELDS)}.")
    for name, value in values.items():
        if name not in AUGMENTATION_FIELDS:
            raise ConfigError(f"{origin}: augmentation.{name} is unknown; use {', '.join(AUGMENTATION_FIELDS)}.")
        check_type(f"{origin}: augmentation.{name}", value, AUGMENTATION_FIELDS[name])
        low, high = AUGMENTATION_RANGES.get(name, (value, value))
        if not low <= value <= high:
            raise ConfigError(f"{origin}: augmentation.{name} must lie in [{low}, {high}] pixels; got {value}.")
    return dict(values)


def check_augmentation_fits(augmentation: dict, input_size: tuple[int, int, int]) -> None:
    """Derived sizes, checked before a batch is allocated: padding and cutout no larger than the image."""
    side = min(input_size[1:])
    for name in AUGMENTATION_RANGES:
        if augmentation.get(name, 0) > side:
            raise ConfigError(f"augmentation.{name} is {augmentation[name]} pixels, more than the {side}-pixel "
                              f"images; pass at most {side}.")


def load_config(recipe: str | None = None, overrides: dict | None = None) -> TrainConfig:
    """The defaults, then the recipe (with its sections for this model), then the overrides; then the recipe's
    schedule fitted to the run and the data set's label constraints applied (see the module docstring);
    validated."""
    config = TrainConfig()
    overrides = dict(overrides or {})
    recipe_config = None
    if recipe:
        values = read_recipe(recipe)
        values.pop("name", None)
        per_model = values.pop("models", {})
        if not isinstance(per_model, dict) or not all(isinstance(table, dict) for table in per_model.values()):
            raise ConfigError(f"recipe {recipe}: models must hold one table of fields per model-name pattern, "
                              'e.g. [models."lenet5*"] with lr = 0.001 under it.')
        apply(values, config, f"recipe {recipe}")
        model = overrides.get("model", config.model)
        for pattern, model_values in per_model.items():
            if fnmatch.fnmatchcase(str(model), pattern):
                replace_warmup_kind(config, model_values)
                apply(model_values, config, f"recipe {recipe}, [models.{pattern!r}]")
        config.recipe = recipe
        recipe_config = copy.deepcopy(config)
    apply_overrides(overrides, config)
    if recipe_config is not None:
        fit_schedule(config, recipe_config, overrides)
    apply_label_constraints(config, overrides)
    if config.pretrained:
        keep_torchvision_layout(config)
    validate(config)
    return config


def apply_overrides(overrides: dict, config: TrainConfig) -> TrainConfig:
    """The command line over a recipe or a resumed run's config: a length given in epochs replaces one in
    iterations, and the other way round."""
    if overrides.get("epochs"):
        config.iterations = 0
    if overrides.get("iterations"):
        config.epochs = 0
    replace_warmup_kind(config, overrides)
    return apply(overrides, config, "command line")


def keep_torchvision_layout(config: TrainConfig):
    """Weights from torchvision fit the full-size stem only, so a model designed for large images keeps it on
    small ones too (the registry would otherwise choose small_input=True below 64 pixels)."""
    from papernets.models import get_model_entry

    if not get_model_entry(config.model).designed_for_small_input and "small_input" not in config.model_options:
        config.model_options["small_input"] = False
        config.adjustments.append("model_options.small_input off: torchvision's weights (--pretrained) fit the "
                                  "full-size stem")


def replace_warmup_kind(config: TrainConfig, values: dict):
    """A later layer (a recipe's model section, the command line) that gives the warm-up in steps replaces an
    earlier one given as a fraction, and the other way round."""
    if values.get("warmup_steps"):
        config.warmup_fraction = 0.0
    if values.get("warmup_fraction"):
        config.warmup_steps = 0


def _length(config: TrainConfig) -> tuple[int, str]:
    return (config.epochs, "epochs") if config.epochs else (config.iterations, "iterations")


def fit_schedule(config: TrainConfig, recipe_config: TrainConfig, overrides: dict):
    """Keep the recipe's schedule in shape when the command line changes the run's length or peak lr; values
    the command line sets itself are kept as given."""
    (length, unit), (recipe_length, recipe_unit) = _length(config), _length(recipe_config)
    timed = config.schedule in ("step", "multistep", "piecewise")
    scaled = [name for name in ("milestones", "step_size") if name not in overrides and getattr(config, name)]
    if timed and scaled and length != recipe_length and recipe_length:
        if unit != recipe_unit:
            raise ConfigError(f"recipe {config.recipe} times its lr schedule over {recipe_length} {recipe_unit}; "
                              f"give the run's length in {recipe_unit} too (e.g. --{recipe_unit} N) so that the "
                              "schedule scales with it.")
        factor = length / recipe_length
        for name in scaled:
            value = getattr(config, name)
            setattr(config, name, [round(item * factor, 4) for item in value] if isinstance(value, list)
                    else round(value * factor, 4))
            config.adjustments.append(f"{name} scaled to {length} of the recipe's {recipe_length} {unit}: "
                                      f"{value} -> {getattr(config, name)}")
    warmup = config.warmup_steps or config.warmup_fraction
    if warmup and "lr" in overrides and "warmup_lr" not in overrides and config.warmup_lr:
        warmup_lr = round(config.warmup_lr * config.lr / recipe_config.lr, 10)
        config.adjustments.append(f"warmup_lr {config.warmup_lr:g} scaled with the peak lr "
                                  f"({recipe_config.lr:g} -> {config.lr:g}) to {warmup_lr:g}")
        config.warmup_lr = warmup_lr


def apply_label_constraints(config: TrainConfig, overrides: dict):
    """A data set's labels win over a recipe's augmentation: no mirroring where a mirrored image shows another
    class. The recipe's flips are dropped (and the run says so); flips asked for on the command line are refused."""
    from papernets.data.catalog import DATASETS

    spec = DATASETS.get(config.dataset)
    if spec is None or spec.mirroring_keeps_labels:
        return
    asked = {"augmentation.flip": overrides.get("augmentation", {}).get("flip"),
             "eval_tta_flip": overrides.get("eval_tta_flip")}
    for name, value in asked.items():
        if value:
            raise ConfigError(f"{name}=true mirrors {spec.name}'s images, and a mirrored {spec.name} image can show "
                              "another class; drop it.")
    reason = f"a mirrored {spec.name} image can show another class"
    if config.augmentation.get("flip"):
        config.augmentation["flip"] = False
        config.adjustments.append(f"augmentation.flip off for {spec.name}: {reason}")
    if config.eval_tta_flip:
        config.eval_tta_flip = False
        config.adjustments.append(f"eval_tta_flip off for {spec.name}: {reason}")


def config_from_dict(values: dict) -> TrainConfig:
    """A config saved in a run folder or checkpoint, read back with the same checks."""
    return apply(dict(values), TrainConfig(), "saved config")


def _require(condition: bool, message: str):
    if not condition:
        raise ConfigError(message)


def validate(config: TrainConfig) -> TrainConfig:
    """Every value a user can get wrong, checked before any work starts."""
    _require(bool(config.model), "No model given: pass --model NAME (`papernets list` shows them).")
    _require(bool(config.dataset), "No dataset given: pass --dataset NAME (e.g. fashion-mnist).")
    _require((config.epochs > 0) != (config.iterations > 0),
             f"Give exactly one of epochs or iterations as a positive number; got epochs={config.epochs}, "
             f"iterations={config.iterations} (e.g. --epochs 10).")
    _require(config.epochs >= 0 and config.iterations >= 0, "epochs and iterations cannot be negative.")
    _require(config.batch_size >= 1, f"Batch size must be at least 1, got {config.batch_size}; e.g. -b 128.")
    _require(config.lr > 0, f"Learning rate must be positive, got {config.lr}; e.g. --lr 0.1.")
    _require(config.weight_decay >= 0, f"weight_decay must be >= 0, got {config.weight_decay}.")
    _require(config.depthwise_weight_decay is None or config.depthwise_weight_decay >= 0,
             f"depthwise_weight_decay must be >= 0, got {config.depthwise_weight_decay}.")
    _require(0 <= config.momentum < 1, f"momentum must be in [0, 1), got {config.momentum}.")
    _require(config.optimizer in OPTIMIZERS,
             f"Unknown optimizer {config.optimizer!r}; use one of {', '.join(OPTIMIZERS)}.")
    _require(not (config.nesterov and config.optimizer == "sgd") or config.momentum > 0,
             "nesterov needs momentum > 0; pass --set momentum=0.9 or nesterov=false.")
    _require(len(config.adam_betas) == 2 and all(0 <= beta < 1 for beta in config.adam_betas),
             f"adam_betas must be two numbers in [0, 1), got {config.adam_betas}.")
    _require(config.sdlm_mu > 0 and config.sdlm_samples >= 1,
             f"sdlm_mu must be positive and sdlm_samples at least 1, got {config.sdlm_mu}, {config.sdlm_samples}.")
    _require(config.optimizer != "sdlm" or (config.momentum == 0 and config.weight_decay == 0),
             "The sdlm optimizer has no momentum and no weight decay; pass --set momentum=0 weight_decay=0.")
    _require(config.loss in LOSSES, f"Unknown loss {config.loss!r}; use one of {', '.join(LOSSES)}.")
    _require(config.loss != "map" or config.label_smoothing == 0,
             "The map loss has no label smoothing; pass --set label_smoothing=0 or loss=cross_entropy.")
    _require(config.schedule in SCHEDULES,
             f"Unknown schedule {config.schedule!r}; use one of {', '.join(SCHEDULES)}.")
    _require(config.schedule_unit in SCHEDULE_UNITS,
             f"schedule_unit must be one of {', '.join(SCHEDULE_UNITS)}, got {config.schedule_unit!r}.")
    _require(config.schedule != "step" or config.step_size > 0, "The step schedule needs step_size > 0.")
    _require(config.milestones == sorted(config.milestones) and all(m > 0 for m in config.milestones),
             f"milestones must be positive and increasing, got {config.milestones}.")
    _require(config.schedule != "piecewise" or len(config.lr_values) == len(config.milestones) + 1,
             "The piecewise schedule needs one more value in lr_values than in milestones.")
    _require(all(value >= 0 for value in config.lr_values), "lr_values cannot be negative.")
    _require(0 < config.gamma <= 1, f"gamma must be in (0, 1], got {config.gamma}.")
    _require(0 <= config.final_lr_fraction <= 1, "final_lr_fraction must be in [0, 1].")
    _require(config.warmup_steps >= 0 and config.warmup_lr >= 0, "warmup_steps and warmup_lr must be >= 0.")
    _require(0 <= config.warmup_fraction < 1, f"warmup_fraction must be in [0, 1), got {config.warmup_fraction}.")
    _require(not (config.warmup_steps and config.warmup_fraction),
             "Give the warm-up as warmup_steps or as warmup_fraction, not both; set the other to 0.")
    _require(not (config.warmup_steps or config.warmup_fraction) or config.warmup_lr <= config.lr,
             f"warmup_lr {config.warmup_lr:g} is above the peak lr {config.lr:g}, so the warm-up would lower the "
             "rate; set warmup_lr below lr (e.g. --set warmup_lr=0).")
    _require(config.warmup_shape in WARMUP_SHAPES, f"warmup_shape must be one of {', '.join(WARMUP_SHAPES)}.")
    _require(config.schedule != "plateau" or config.val_size > 0,
             "The plateau schedule watches validation accuracy, so it needs val_size > 0.")
    _require(config.plateau_patience >= 1, "plateau_patience must be at least 1.")
    _require(0 <= config.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {config.label_smoothing}.")
    _require(all(weight >= 0 for weight in config.aux_loss_weights), "aux_loss_weights cannot be negative.")
    _require(config.distill_temperature > 0, "distill_temperature must be positive.")
    _require(0 <= config.distill_alpha <= 1, f"distill_alpha must be in [0, 1], got {config.distill_alpha}.")
    _require(config.val_size >= 0 and config.train_size >= 0 and config.test_size >= 0,
             "val_size, train_size and test_size cannot be negative.")
    _require(config.device in DEVICES, f"Unknown device {config.device!r}; use one of {', '.join(DEVICES)}.")
    _require(config.amp in AMP_MODES, f"amp must be one of {', '.join(AMP_MODES)}, got {config.amp!r}.")
    _require(config.threads >= 0, "threads cannot be negative (0 uses every core).")
    _require(config.checkpoint_every_steps >= 0, "checkpoint_every_steps cannot be negative (0: only at epoch ends).")
    check_augmentation(config.augmentation, "config")
    for name, value in config.to_dict().items():
        check_range(name, value)
    return config
