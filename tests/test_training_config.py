"""Config, recipes, overrides, schedules, optimizer groups and losses: fast unit tests, no training."""

import math

import pytest
import torch
from torch import nn

from papernets import stats
from papernets.config import (TrainConfig, list_recipes, load_config, parse_overrides, read_recipe,
                                       validate)
from papernets.errors import ConfigError
from papernets.training.losses import classification_loss, distillation_divergence, training_loss
from papernets.training.optim import LearningRateSchedule, build_optimizer, parameter_groups

PAPER_RECIPES = ["resnet-cifar-he2015", "vgg-simonyan2014", "googlenet-szegedy2014", "mobilenet-howard2017",
                 "lenet-lecun1998"]
FAST_RECIPES = ["fast-fashion-mnist", "fast-fashion-mnist-full", "fast-mnist", "fast-mnist-1min", "fast-cifar10", "fast-cifar100"]


def config(**fields) -> TrainConfig:
    return validate(TrainConfig(**{"model": "lenet5_modern", "dataset": "fashion-mnist", "epochs": 1, **fields}))


@pytest.mark.parametrize("recipe", PAPER_RECIPES + FAST_RECIPES)
def test_every_recipe_loads_validates_and_cites_its_source(recipe):
    assert recipe in list_recipes()
    loaded = load_config(recipe, {"dataset": "cifar10"})
    assert loaded.recipe == recipe and loaded.source
    from papernets.config import RECIPES_DIR
    first_line = (RECIPES_DIR / f"{recipe}.toml").read_text().splitlines()[0]
    assert first_line.startswith("#") and len(first_line) > 20


def test_resnet_recipe_has_the_papers_numbers():
    resnet = load_config("resnet-cifar-he2015", {"dataset": "cifar10"})
    assert (resnet.batch_size, resnet.lr, resnet.momentum, resnet.weight_decay) == (128, 0.1, 0.9, 1e-4)
    # 32k, 48k, 64k iterations at 351 iterations per epoch (45,000 images, batch 128) are epochs 91.2, 136.8, 182.3.
    assert (resnet.milestones, resnet.epochs, resnet.schedule_unit) == ([91, 137], 182, "epoch")
    assert resnet.val_size == 5000 and resnet.warmup_steps == 0
    schedule = LearningRateSchedule(resnet, steps_per_epoch=351, total_steps=182 * 351)
    assert [schedule.lr(step) for step in (0, 91 * 351 - 1, 91 * 351, 137 * 351 - 1, 137 * 351)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001])


def test_resnet110_gets_the_papers_warm_up_from_the_recipe_and_resnet20_does_not():
    warm = load_config("resnet-cifar-he2015", {"dataset": "cifar10", "model": "resnet110"})
    schedule = LearningRateSchedule(warm, steps_per_epoch=351, total_steps=182 * 351)
    assert [schedule.lr(step) for step in (0, 399, 400)] == pytest.approx([0.01, 0.01, 0.1])
    assert "warm-up 0.01 for 400 steps" in schedule.describe()
    assert load_config("resnet-cifar-he2015", {"dataset": "cifar10", "model": "resnet56"}).warmup_steps == 0


def test_lenet_recipe_follows_the_papers_pass_schedule():
    lenet = load_config("lenet-lecun1998", {"dataset": "mnist"})
    schedule = LearningRateSchedule(lenet, steps_per_epoch=10, total_steps=200)
    per_pass = [schedule.lr(epoch * 10) for epoch in range(20)]
    assert per_pass == pytest.approx([5e-4] * 2 + [2e-4] * 3 + [1e-4] * 3 + [5e-5] * 4 + [1e-5] * 8)
    assert lenet.epochs == 20 and lenet.optimizer == "sdlm" and lenet.loss == "map"


def test_googlenet_and_vgg_recipes():
    googlenet = load_config("googlenet-szegedy2014", {"dataset": "cifar10"})
    schedule = LearningRateSchedule(googlenet, steps_per_epoch=5, total_steps=5 * 64)
    assert schedule.lr(5 * 8) == pytest.approx(0.01 * 0.96) and schedule.lr(5 * 8 - 1) == pytest.approx(0.01)
    assert googlenet.aux_loss_weights == []  # the model's own, one per auxiliary head (engine test)
    vgg = load_config("vgg-simonyan2014", {"dataset": "cifar10"})
    assert (vgg.batch_size, vgg.lr, vgg.weight_decay, vgg.epochs, vgg.schedule) == (256, 0.01, 5e-4, 74, "plateau")


def test_plateau_divides_the_lr_after_patience_epochs_at_most_max_times():
    schedule = LearningRateSchedule(config(schedule="plateau", lr=1.0, plateau_patience=2,
                                           plateau_max_reductions=3), steps_per_epoch=10, total_steps=100)
    lrs = []
    for accuracy in [0.5, 0.6, 0.6, 0.59, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]:
        schedule.end_of_epoch(accuracy)
        lrs.append(schedule.lr(0))
    assert lrs == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001])
    restored = LearningRateSchedule(schedule.config, 10, 100)
    restored.load_state_dict(schedule.state_dict())
    assert restored.lr(0) == schedule.lr(0) and restored.state_dict() == schedule.state_dict()


def test_cosine_and_linear_with_linear_warm_up():
    cosine = LearningRateSchedule(config(schedule="cosine", lr=1.0, warmup_steps=10, warmup_lr=0.0),
                                  steps_per_epoch=10, total_steps=110)
    assert [cosine.lr(step) for step in (0, 5, 10, 60, 110)] == pytest.approx([0, 0.5, 1.0, 0.5, 0.0])
    linear = LearningRateSchedule(config(schedule="linear", lr=1.0, final_lr_fraction=0.1), 10, 100)
    assert [linear.lr(step) for step in (0, 50, 100)] == pytest.approx([1.0, 0.55, 0.1])
    step = LearningRateSchedule(config(schedule="step", lr=1.0, step_size=2, gamma=0.5), 10, 100)
    assert [step.lr(s) for s in (0, 19, 20, 40)] == pytest.approx([1.0, 1.0, 0.5, 0.25])


def test_overrides_are_type_checked():
    parsed = parse_overrides(["lr=0.05", "optimizer=adamw", "milestones=[2, 4]", "augmentation.flip=false",
                              "nesterov=true", "depthwise_weight_decay=0"])
    assert parsed == {"lr": 0.05, "optimizer": "adamw", "milestones": [2, 4], "augmentation": {"flip": False},
                      "nesterov": True, "depthwise_weight_decay": 0}
    loaded = load_config("fast-fashion-mnist", {"weight_decay": 0, "augmentation": {"flip": False}})
    assert loaded.weight_decay == 0.0 and isinstance(loaded.weight_decay, float)
    assert loaded.augmentation == {"pad": 2, "crop": True, "flip": False, "cutout": 0}
    bad = [{"lr": "fast"}, {"batch_size": 1.5}, {"epochs": True}, {"no_such_field": 1},
           {"milestones": [1, "x"]}, {"augmentation": {"rotate": 3}}, {"augmentation": {"pad": "two"}},
           {"lr": -0.1}, {"batch_size": 0}, {"optimizer": "lbfgs"}, {"schedule": "warmup-cosine"},
           {"label_smoothing": 1.0}, {"distill_alpha": 1.5}, {"lr": math.inf}]
    for overrides in bad:
        with pytest.raises(ConfigError) as error:
            load_config("fast-fashion-mnist", overrides)
        assert len(str(error.value).splitlines()) == 1, str(error.value)
    with pytest.raises(ConfigError, match="field=value"):
        parse_overrides(["lr"])
    with pytest.raises(ConfigError, match="Unknown recipe"):
        read_recipe("no-such-recipe")


def test_epochs_on_the_command_line_replace_a_recipes_iterations():
    resnet = load_config("resnet-cifar-he2015", {"dataset": "cifar10", "epochs": 3})
    assert (resnet.epochs, resnet.iterations) == (3, 0)
    with pytest.raises(ConfigError, match="exactly one of epochs or iterations"):
        validate(TrainConfig(model="resnet20", dataset="cifar10"))


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, bias=False)
        self.depthwise = nn.Conv2d(4, 4, 3, groups=4, bias=False)
        self.norm = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)


def test_parameter_groups_drop_decay_on_bn_and_bias_and_depthwise_when_asked():
    model = TinyNet()
    groups = parameter_groups(model, config(weight_decay=0.1, no_weight_decay_on_bn_bias=True,
                                            depthwise_weight_decay=0.0))
    by_decay = {(group["weight_decay"], len(group["params"])) for group in groups}
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    decayed = {names[id(p)] for g in groups if g["weight_decay"] == 0.1 for p in g["params"]}
    assert decayed == {"conv.weight", "fc.weight"}
    assert sum(count for _, count in by_decay) == len(list(model.parameters()))
    plain = parameter_groups(model, config(weight_decay=0.1))
    assert len(plain) == 1 and plain[0]["weight_decay"] == 0.1
    for optimizer, expected in (("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW),
                                ("rmsprop", torch.optim.RMSprop)):
        assert isinstance(build_optimizer(model, config(optimizer=optimizer)), expected)


def test_losses_match_torch_and_distillation_kl_is_non_negative():
    torch.manual_seed(0)
    logits, labels = torch.randn(16, 10), torch.randint(0, 10, (16,))
    expected = nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    assert classification_loss(logits, labels, 0.1).item() == pytest.approx(expected.item(), rel=1e-5)
    teacher = torch.randn(16, 10) * 3
    for temperature in (1.0, 4.0, 20.0):
        assert distillation_divergence(logits, teacher, temperature).item() >= 0
    assert distillation_divergence(teacher, teacher, 4.0).item() == pytest.approx(0.0, abs=1e-6)
    parts = training_loss(logits, labels, teacher_logits=teacher, temperature=4.0, alpha=0.9)
    kl = distillation_divergence(logits, teacher, 4.0)
    hard = nn.functional.cross_entropy(logits, labels)
    assert parts.total.item() == pytest.approx((0.9 * 16 * kl + 0.1 * hard).item(), rel=1e-5)
    aux = training_loss((logits, logits * 2, logits * 3), labels, aux_loss_weights=(0.3, 0.3))
    expected_aux = (nn.functional.cross_entropy(logits, labels) + 0.3 * nn.functional.cross_entropy(logits * 2, labels)
                    + 0.3 * nn.functional.cross_entropy(logits * 3, labels))
    assert aux.total.item() == pytest.approx(expected_aux.item(), rel=1e-5)


def test_training_losses_equal_the_stats_reference():
    """The loop's fused torch losses and papernets.stats (the tested math of docs/math.md) agree."""
    torch.manual_seed(0)
    logits, labels, teacher = torch.randn(32, 7) * 4, torch.randint(0, 7, (32,)), torch.randn(32, 7) * 3
    for smoothing in (0.0, 0.1, 0.5):
        targets = stats.label_smoothing_targets(labels, 7, smoothing)
        reference = stats.cross_entropy(targets, logits=logits).mean()
        assert classification_loss(logits, labels, smoothing).item() == pytest.approx(reference.item(), rel=1e-6)
    for temperature in (1.0, 4.0):
        teacher_probabilities = torch.softmax(teacher / temperature, dim=-1)
        reference = stats.kl_divergence(teacher_probabilities, logits=logits / temperature).mean()
        assert distillation_divergence(logits, teacher, temperature).item() == pytest.approx(reference.item(),
                                                                                            rel=1e-5)


def test_a_recipe_can_adjust_fields_for_some_models(tmp_path):
    recipe = tmp_path / "mixed.toml"
    recipe.write_text('# test recipe\nmodel = "resnet20"\ndataset = "mnist"\nepochs = 2\nlr = 0.1\n'
                      '[models."lenet5*"]\noptimizer = "adamw"\nlr = 0.002\n')
    assert (load_config(str(recipe)).optimizer, load_config(str(recipe)).lr) == ("sgd", 0.1)
    lenet = load_config(str(recipe), {"model": "lenet5_modern"})
    assert (lenet.optimizer, lenet.lr) == ("adamw", 0.002)
    assert load_config(str(recipe), {"model": "lenet5", "lr": 0.01}).lr == 0.01  # the command line wins
    recipe.write_text('model = "lenet5"\ndataset = "mnist"\nepochs = 2\n[models."lenet5"]\nlearning_rate = 1\n')
    with pytest.raises(ConfigError, match="learning_rate"):
        load_config(str(recipe))


def test_milestones_scale_with_epochs_and_the_schedule_says_so():
    short = load_config("resnet-cifar-he2015", {"dataset": "mnist", "epochs": 3})
    assert short.milestones == pytest.approx([1.5, 2.2582], abs=1e-4)
    assert any("milestones scaled" in note for note in short.adjustments)
    schedule = LearningRateSchedule(short, steps_per_epoch=429, total_steps=3 * 429)
    assert [schedule.lr(step) for step in (0, 643, 644, 968, 969)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001])
    assert "0.01 from step 644 (epoch 1.5), 0.001 from step 969" in schedule.describe()
    googlenet = load_config("googlenet-szegedy2014", {"dataset": "cifar10", "epochs": 8})
    assert googlenet.step_size == 1.0  # 4% every 8 of 64 epochs -> every 1 of 8
    kept = load_config("resnet-cifar-he2015", {"dataset": "mnist", "epochs": 3, "milestones": [2]})
    assert kept.milestones == [2]  # the command line's own milestones are used as given
    with pytest.raises(ConfigError, match="give the run's length in epochs"):
        load_config("resnet-cifar-he2015", {"dataset": "cifar10", "iterations": 500})


def test_warm_up_is_a_fraction_of_the_run_and_never_above_the_peak():
    one_epoch = load_config("fast-fashion-mnist", {"epochs": 1})
    schedule = LearningRateSchedule(one_epoch, steps_per_epoch=214, total_steps=214)
    assert schedule.warmup_steps == 43 and schedule.lr(214 - 1) < 0.01  # warms up, then decays to ~0
    with pytest.raises(ConfigError, match="warmup_lr 0.5 is above the peak lr 0.1"):
        load_config("fast-mnist", {"lr": 0.1, "warmup_lr": 0.5})
    lower = load_config("fast-cifar10", {"lr": 0.02})  # the recipe warms up from 0.02 to 0.2
    assert lower.warmup_lr == pytest.approx(0.002) and any("warmup_lr" in note for note in lower.adjustments)
    lenet = load_config("fast-mnist", {"model": "lenet5"})
    assert lenet.warmup_lr <= lenet.lr and (lenet.warmup_steps, lenet.warmup_fraction) == (100, 0.0)
    assert load_config("fast-mnist", {"warmup_steps": 50}).warmup_fraction == 0.0
    with pytest.raises(ConfigError, match="not both"):
        validate(TrainConfig(model="lenet5", dataset="mnist", epochs=1, warmup_steps=5, warmup_fraction=0.1))


@pytest.mark.parametrize("recipe", PAPER_RECIPES + FAST_RECIPES)
def test_mnist_never_gets_mirrored_digits_from_a_recipe(recipe):
    mnist = load_config(recipe, {"dataset": "mnist"})
    assert not mnist.augmentation.get("flip") and not mnist.eval_tta_flip
    recipe_flips = read_recipe(recipe).get("augmentation", {}).get("flip")
    assert any("flip off for mnist" in note for note in mnist.adjustments) == bool(recipe_flips)
    with pytest.raises(ConfigError, match="mirrors mnist's images"):
        load_config(recipe, {"dataset": "mnist", "augmentation": {"flip": True}})


def test_a_recipe_with_a_base_holds_only_what_differs(tmp_path):
    assert read_recipe("fast-mnist-1min") == {**read_recipe("fast-mnist"), "name": "fast-mnist-1min", "epochs": 3}
    # docs/BENCHMARKS.md measured fast-fashion-mnist-full as `--recipe fast-fashion-mnist --set val_size=0 epochs=6`
    full = read_recipe("fast-fashion-mnist-full")
    assert full == {**read_recipe("fast-fashion-mnist"), "name": "fast-fashion-mnist-full", "source": full["source"],
                    "epochs": 6, "val_size": 0}
    derived = tmp_path / "derived.toml"
    derived.write_text('base = "fast-mnist"\nwarmup_steps = 7\n[augmentation]\npad = 0\n'
                       '[models."lenet5*"]\nlr = 1e-3\n')
    values = read_recipe(str(derived))
    assert values["warmup_steps"] == 7 and "warmup_fraction" not in values  # one warm-up kind replaces the other
    assert values["augmentation"] == {**read_recipe("fast-mnist")["augmentation"], "pad": 0}
    assert values["models"]["lenet5*"]["lr"] == 1e-3 and values["models"]["lenet5*"]["optimizer"] == "adamw"
    looped = tmp_path / "looped.toml"
    looped.write_text(f'base = "{looped}"\n')
    with pytest.raises(ConfigError, match="its bases form a loop"):
        read_recipe(str(looped))
