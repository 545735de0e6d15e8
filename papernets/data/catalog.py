"""The four data sets papernets knows: their files, where to download them, their published checksums.

Sources of the facts below:
- MNIST: LeCun, Cortes, Burges, "The MNIST database of handwritten digits". The original site has been
  unreliable (it refuses downloads at times), so the PyTorch mirror comes first; MD5s as published with torchvision's MNIST.
- Fashion-MNIST: Xiao, Rasul, Vollgraf, arXiv:1708.07747; URLs and MD5s from the project's README.
- CIFAR-10 / CIFAR-100: Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009;
  URLs and MD5s from https://www.cs.toronto.edu/~kriz/cifar.html (per-file MD5s as listed by torchvision).
- Download caps (`largest_download`): the largest published file rounded up, so that a mirror sending more is
  cut off before its MD5 is computed. The pages above give MNIST's train-images-idx3-ubyte.gz as 9.9 MB,
  Fashion-MNIST's as 26 MB, and the CIFAR python archives as 163 MB (CIFAR-10) and 161 MB (CIFAR-100).

Checksums verify what papernets downloads (and finds again in its cache). Files found elsewhere are not
compared with them: Debian's `dataset-fashion-mnist`, for one, recompresses the .gz files (same images,
different bytes). Every file is parsed strictly whatever its origin.
"""

from dataclasses import dataclass

from papernets.errors import DatasetError

MB = 10**6

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# CIFAR file names per release, split -> files. Python release: pickled dicts; binary: fixed-size records.
CIFAR10_PYTHON = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
CIFAR10_BINARY = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)}
CIFAR100_PYTHON = {"train": ("train",), "test": ("test",)}
CIFAR100_BINARY = {"train": ("train.bin",), "test": ("test.bin",)}


@dataclass(frozen=True)
class DatasetSpec:
    """What papernets knows about one data set before reading a byte of it."""

    name: str
    title: str
    paper: str
    format: str  # "idx" (MNIST family) or "cifar"
    image_shape: tuple[int, int, int]  # (C, H, W)
    class_names: tuple[str, ...]
    train_size: int
    test_size: int
    folders: tuple[str, ...]  # sub-folders that may hold the files, in the order they are tried
    system_folders: tuple[str, ...]  # folder names under the system data roots (e.g. Debian's)
    mirrors: tuple[str, ...]  # base URLs, tried in order
    downloads: tuple[tuple[str, str], ...]  # (file name, MD5 as published)
    archive_folder: str = ""  # folder a CIFAR archive extracts to ("" for plain files)
    file_md5: tuple[tuple[str, str], ...] = ()  # published MD5s of the files inside an archive
    debian_package: str = ""  # the Debian package that installs the files, where one exists
    python_release: dict[str, tuple[str, ...]] | None = None  # CIFAR: split -> pickled batch files
    binary_release: dict[str, tuple[str, ...]] | None = None  # CIFAR: split -> binary batch files
    label_key: str = ""  # CIFAR python release: the dict key of the labels used
    label_bytes: int = 0  # CIFAR binary release: label bytes per record (the last one is the label used)
    largest_download: int = 0  # bytes: no published file of the data set is larger
    mirroring_keeps_labels: bool = True  # False where a mirrored image shows another class (a mirrored 2 is no 2)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table",
    "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST handwritten digits",
        paper="LeCun, Bottou, Bengio, Haffner, Proc. IEEE 1998",
        format="idx",
        image_shape=(1, 28, 28),
        class_names=tuple(str(digit) for digit in range(10)),
        train_size=60_000,
        test_size=10_000,
        folders=("mnist", "MNIST/raw"),
        system_folders=("mnist",),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        largest_download=12 * MB,
        downloads=(
            ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        ),
        mirroring_keeps_labels=False,
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST (Zalando article images)",
        paper="Xiao, Rasul, Vollgraf, arXiv:1708.07747",
        format="idx",
        image_shape=(1, 28, 28),
        class_names=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),  # fmt: skip
        train_size=60_000,
        test_size=10_000,
        folders=("fashion-mnist", "FashionMNIST/raw"),
        system_folders=("fashion-mnist",),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        debian_package="dataset-fashion-mnist",
        largest_download=32 * MB,
        downloads=(
            ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
        ),
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        title="CIFAR-10",
        paper="Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009",
        format="cifar",
        image_shape=(3, 32, 32),
        class_names=(
            "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
        ),  # fmt: skip
        train_size=50_000,
        test_size=10_000,
        folders=("cifar-10-batches-py", "cifar-10-batches-bin", "cifar10/cifar-10-batches-py", "cifar10"),
        system_folders=("cifar-10-batches-py", "cifar-10-batches-bin", "cifar10", "cifar-10"),
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        largest_download=200 * MB,
        downloads=(("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
        archive_folder="cifar-10-batches-py",
        python_release=CIFAR10_PYTHON,
        binary_release=CIFAR10_BINARY,
        label_key="labels",
        label_bytes=1,
        file_md5=(
            ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            ("data_batch_4", "634d18415352ddfa80567beed471001a"),
            ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
            ("test_batch", "40351d587109b95175f43aff81a1287e"),
        ),
    ),
    "cifar100": DatasetSpec(
        name="cifar100",
        title="CIFAR-100 (fine labels)",
        paper="Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009",
        format="cifar",
        image_shape=(3, 32, 32),
        class_names=CIFAR100_CLASSES,
        train_size=50_000,
        test_size=10_000,
        folders=("cifar-100-python", "cifar-100-binary", "cifar100/cifar-100-python", "cifar100"),
        system_folders=("cifar-100-python", "cifar-100-binary", "cifar100", "cifar-100"),
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        largest_download=200 * MB,
        downloads=(("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),),
        archive_folder="cifar-100-python",
        python_release=CIFAR100_PYTHON,
        binary_release=CIFAR100_BINARY,
        label_key="fine_labels",  # the 100 classes; "coarse_labels" holds the 20 superclasses
        label_bytes=2,  # coarse label, then fine label
        file_md5=(
            ("train", "16019d7e3df5f24257cddd939b257f8d"),
            ("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),
        ),
    ),
}


def get_spec(name: str) -> DatasetSpec:
    """The catalog entry for `name`; a `DatasetError` naming the known data sets otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"Unknown data set {name!r}; choose one of: {', '.join(DATASETS)}.") from None
