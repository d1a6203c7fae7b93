"""Halide schedule search: lowering of pipeline specs to Halide and scheduling on top."""
