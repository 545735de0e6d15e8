"""BatchLoader: augmentation that keeps labels aligned, batches as a pure function of (seed, epoch, step),
exact resume, shards, evaluation order, dtypes and layouts."""

import itertools

import numpy as np
import pytest
import torch

from papernets.data import Augmentation, BatchLoader, default_augmentation
from papernets.errors import ConfigError

NUM_IMAGES, CHANNELS, HEIGHT, WIDTH = 20, 3, 8, 6  # not square, so that rows and columns cannot be confused


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (NUM_IMAGES, CHANNELS, HEIGHT, WIDTH), dtype=np.uint8)
    labels = rng.integers(0, 7, NUM_IMAGES)
    return images, labels


def make_loader(data, **options) -> BatchLoader:
    images, labels = data
    settings = dict(batch_size=8, seed=0, augment=Augmentation(pad=2, crop=True, flip=True),
                    mean=[0.0] * CHANNELS, std=[1.0] * CHANNELS)
    return BatchLoader(images, labels, **(settings | options))


def as_pixels(x: torch.Tensor) -> np.ndarray:
    """Back from x = pixel / 255 (mean 0, std 1) to uint8 pixels."""
    return np.rint(x.float().numpy() * 255).astype(np.uint8)


def explain(image: np.ndarray, images: np.ndarray, pad: int) -> tuple[int, int, int, bool]:
    """(source index, top, left, flipped) of the unique crop/flip of a padded source that equals `image`."""
    padded = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    matches = [
        (index, top, left, flipped)
        for index, top, left, flipped in itertools.product(range(len(images)), range(2 * pad + 1),
                                                           range(2 * pad + 1), (False, True))
        if np.array_equal(image, (lambda crop: crop[..., ::-1] if flipped else crop)(
            padded[index, :, top : top + HEIGHT, left : left + WIDTH]))
    ]
    assert len(matches) == 1, f"{len(matches)} explanations"
    return matches[0]


@pytest.mark.parametrize("channels_last", [False, True])
def test_every_image_is_a_padded_crop_or_flip_of_its_own_source_and_keeps_its_label(data, channels_last):
    images, labels = data
    loader = make_loader(data, channels_last=channels_last)
    seen_sources, augmentations = [], set()
    for x, y in loader.batches(epoch=3):
        assert x.shape == (8, CHANNELS, HEIGHT, WIDTH) and x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        for image, label in zip(as_pixels(x), y.tolist()):
            source, top, left, flipped = explain(image, images, pad=2)
            assert label == labels[source]
            seen_sources.append(source)
            augmentations.add((top, left, flipped))
    assert len(seen_sources) == 16 and len(set(seen_sources)) == 16  # 2 full batches of distinct images
    assert len(augmentations) > 8 and {flipped for *_, flipped in augmentations} == {False, True}


def test_without_flip_no_image_is_mirrored(data):
    images, _ = data
    loader = make_loader(data, augment=Augmentation(pad=1, crop=True, flip=False))
    for x, _ in loader.batches(epoch=0):
        assert not any(explain(image, images, pad=1)[3] for image in as_pixels(x))


def test_no_augmentation_gives_the_images_themselves(data):
    images, labels = data
    loader = make_loader(data, augment=None, shuffle=False, drop_last=False)
    x, y = map(torch.cat, zip(*loader.batches(epoch=0)))
    np.testing.assert_array_equal(as_pixels(x), images)
    np.testing.assert_array_equal(y.numpy(), labels)


def batches_of(loader, epoch, **options):
    return [(x.clone(), y.clone()) for x, y in loader.batches(epoch, **options)]


def assert_same_batches(first, second):
    assert len(first) == len(second)
    for (x1, y1), (x2, y2) in zip(first, second):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_same_seed_gives_identical_batches_and_other_seeds_or_epochs_differ(data):
    reference = batches_of(make_loader(data), epoch=1)
    assert_same_batches(reference, batches_of(make_loader(data), epoch=1))
    assert not torch.equal(reference[0][0], batches_of(make_loader(data), epoch=2)[0][0])
    assert not torch.equal(reference[0][0], batches_of(make_loader(data, seed=1), epoch=1)[0][0])


def test_resume_mid_epoch_equals_an_uninterrupted_pass(data):
    uninterrupted = batches_of(make_loader(data, batch_size=4, augment=Augmentation(pad=2, cutout=3)), epoch=5)
    resumed = batches_of(make_loader(data, batch_size=4, augment=Augmentation(pad=2, cutout=3)), epoch=5, start_step=3)
    assert len(uninterrupted) == 5
    assert_same_batches(uninterrupted[3:], resumed)


def test_epoch_is_a_permutation_when_not_dropping_the_last_batch(data):
    _, labels = data
    loader = make_loader(data, batch_size=6, augment=None, drop_last=False)
    sizes = [len(y) for _, y in loader.batches(epoch=0)]
    assert sizes == [6, 6, 6, 2] and len(loader) == 4
    assert len(make_loader(data, batch_size=6)) == 3


@pytest.mark.parametrize("world_size", [2, 4])
def test_shards_are_disjoint_equal_and_together_the_global_batch(data, world_size):
    loader = make_loader(data, augment=Augmentation(pad=2, cutout=2))
    global_batches = batches_of(loader, epoch=2)
    shards = [batches_of(loader, epoch=2, rank=rank, world_size=world_size) for rank in range(world_size)]
    for step, (x, y) in enumerate(global_batches):
        parts = [shards[rank][step] for rank in range(world_size)]
        assert {len(part_y) for _, part_y in parts} == {8 // world_size}
        assert torch.equal(torch.cat([part_x for part_x, _ in parts]), x)
        assert torch.equal(torch.cat([part_y for _, part_y in parts]), y)
    images, _ = data
    plain = make_loader(data)  # without cutout every image can be traced back to its source
    sources = [{explain(image, images, pad=2)[0] for x, _ in plain.batches(2, rank=rank, world_size=world_size)
                for image in as_pixels(x)} for rank in range(world_size)]
    assert all(a.isdisjoint(b) for a, b in itertools.combinations(sources, 2))
    assert sum(map(len, sources)) == 16


def test_last_partial_batch_is_cut_to_equal_shards(data):
    loader = make_loader(data, batch_size=8, drop_last=False, augment=None)
    sizes = [[len(y) for _, y in loader.batches(0, rank=rank, world_size=4)] for rank in range(4)]
    assert sizes == [[2, 2, 1]] * 4  # 20 images: 8 + 8 + 4, the last batch as 4 shards of 1


def test_batch_size_must_divide_by_world_size(data):
    with pytest.raises(ConfigError, match="batch_size 8 does not divide by world_size 3"):
        make_loader(data).batches(0, world_size=3)
    with pytest.raises(ConfigError, match=r"rank 2 is not in 0..1"):
        make_loader(data).batches(0, rank=2, world_size=2)


def test_eval_batches_keep_order_skip_augmentation_normalize_and_keep_the_last_batch(data):
    images, labels = data
    mean, std = [0.1, 0.5, 0.9], [0.2, 0.3, 0.4]
    loader = make_loader(data, batch_size=8, mean=mean, std=std, augment=Augmentation(pad=4, cutout=4))
    batches = list(loader.eval_batches())
    assert [len(y) for _, y in batches] == [8, 8, 4]
    x = torch.cat([x for x, _ in batches])
    expected = (images / 255.0 - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(torch.cat([y for _, y in batches]).numpy(), labels)


def test_eval_shards_partition_the_split(data):
    loader = make_loader(data, batch_size=4)
    ids = [torch.cat([x for x, _ in loader.eval_batches(rank, 3)])[:, 0, 0, 0] for rank in range(3)]
    everything = torch.cat([x for x, _ in loader.eval_batches()])[:, 0, 0, 0]
    assert sorted(torch.cat(ids).tolist()) == sorted(everything.tolist()) and sum(map(len, ids)) == NUM_IMAGES


def test_bfloat16_output_in_both_layouts(data):
    reference, _ = next(make_loader(data).batches(0))
    for channels_last in (False, True):
        x, _ = next(make_loader(data, dtype=torch.bfloat16, channels_last=channels_last).batches(0))
        assert x.dtype == torch.bfloat16 and x.shape == reference.shape
        assert x.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        torch.testing.assert_close(x.float(), reference, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("channels_last", [False, True])
def test_cutout_sets_one_square_to_the_mean(data, channels_last):
    loader = make_loader(data, augment=Augmentation(pad=0, crop=False, flip=False, cutout=4),
                         mean=[0.5] * CHANNELS, std=[0.25] * CHANNELS, channels_last=channels_last)
    x, _ = next(loader.batches(0))
    erased = (x == 0).all(dim=1)  # (B, H, W): erased in every channel
    for mask in erased:
        rows, columns = mask.any(dim=1).nonzero().flatten(), mask.any(dim=0).nonzero().flatten()
        assert 1 <= len(rows) <= 4 and 1 <= len(columns) <= 4
        assert mask.sum() == len(rows) * len(columns)  # a rectangle (a square clipped by the border)
        assert rows.diff().eq(1).all() and columns.diff().eq(1).all()


def test_invalid_arguments_are_config_errors(data):
    images, labels = data
    with pytest.raises(ConfigError, match="uint8 images"):
        BatchLoader(images.astype(np.float32), labels, batch_size=4, mean=[0] * 3, std=[1] * 3)
    with pytest.raises(ConfigError, match="one integer label per image"):
        BatchLoader(images, labels[:-1], batch_size=4, mean=[0] * 3, std=[1] * 3)
    with pytest.raises(ConfigError, match="every std > 0"):
        BatchLoader(images, labels, batch_size=4, mean=[0] * 3, std=[1, 0, 1])
    with pytest.raises(ConfigError, match="batch_size 0"):
        BatchLoader(images, labels, batch_size=0, mean=[0] * 3, std=[1] * 3)
    with pytest.raises(ConfigError, match="dtype torch.int8"):
        BatchLoader(images, labels, batch_size=4, mean=[0] * 3, std=[1] * 3, dtype=torch.int8)
    with pytest.raises(ConfigError, match="pad=-1"):
        Augmentation(pad=-1)
    with pytest.raises(ConfigError, match="flip='yes' is not true or false"):
        Augmentation(flip="yes")


def test_default_augmentations_follow_the_papers_and_symmetry():
    assert default_augmentation("cifar10") == Augmentation(pad=4, crop=True, flip=True, cutout=0)
    assert default_augmentation("cifar100") == Augmentation(pad=4, crop=True, flip=True, cutout=0)
    assert default_augmentation("fashion-mnist") == Augmentation(pad=2, crop=True, flip=True, cutout=0)
    assert default_augmentation("mnist") == Augmentation(pad=2, crop=True, flip=False, cutout=0)
    with pytest.raises(ConfigError, match="No default augmentation for data set 'svhn'"):
        default_augmentation("svhn")
