"""Model bundles: the on-disk description of a CLIP-like model, its loader and its tooling."""
