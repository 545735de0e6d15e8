"""Models, one file per paper. Every model module is imported here explicitly so that the registry is
complete whatever else was imported."""

from papernets.models import lenet  # noqa: F401  (registers lenet5, lenet5_modern)
from papernets.models.registry import create_model, get_model_entry, list_models, register_model

__all__ = ["create_model", "get_model_entry", "list_models", "register_model"]
