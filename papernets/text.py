"""Words in the sentences papernets prints, shared by training's progress lines, the command line and reports."""


def plural(count: int, noun: str) -> str:
    """`1 epoch`, `3 epochs`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
