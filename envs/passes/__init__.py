"""LLVM pass ordering (``optgym/PassOrdering-v0``): DESIGN section 2.1."""
