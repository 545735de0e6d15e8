"""The run folder, below both training and analysis: its file names (names.py), writing (writer.py), reading
(reader.py) and checkpoints (checkpoint.py). Training writes a run folder; reports, `predict`, `compare` and
`eval` read it; neither side imports the other."""
