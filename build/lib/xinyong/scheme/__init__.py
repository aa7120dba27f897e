"""Rule packs: schema, loader and the compiler to lookup tables."""

from xinyong.scheme.schema import Pack, load_pack

__all__ = ["Pack", "load_pack"]
