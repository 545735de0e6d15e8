"""Models, one file per paper. Every model module is imported here explicitly so that the registry is
complete whatever else was imported."""

from papernets.models import lenet  # noqa: F401  (registers lenet5, lenet5_modern)
from papernets.models import vgg  # noqa: F401  (registers vgg11..vgg19, vgg11_lrn, vgg16_c, vgg*_bn)
from papernets.models import googlenet  # noqa: F401  (registers googlenet, googlenet_bn)
from papernets.models import inception_v3  # noqa: F401  (registers inception_v3)
from papernets.models import resnet  # noqa: F401  (registers resnet18..152, resnet20..1202)
from papernets.models import mobilenet_v1  # noqa: F401  (registers mobilenet_v1)
from papernets.models import mobilenet_v2  # noqa: F401  (registers mobilenet_v2)
from papernets.models import mobilenet_v3  # noqa: F401  (registers mobilenet_v3_large, mobilenet_v3_small)
from papernets.models import fastnet  # noqa: F401  (registers fastnet)
from papernets.models.registry import create_model, get_model_entry, list_models, register_model
from papernets.models.summary import ModelSummary, count_macs, count_parameters, summarize

__all__ = ["ModelSummary", "count_macs", "count_parameters", "create_model", "get_model_entry", "list_models",
           "register_model", "summarize"]
