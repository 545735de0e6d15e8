"""Inference and export: BatchNorm folded into convolutions, bf16 and channels_last where the hardware has
them (fusion.py), and the safetensors file format of an exported model. Reads models, never training."""
