"""Local look-alike of WhatsApp Web for driving the browser code offline (see docs/simulator.md)."""
from .app import create_app
from .config import SimConfig

__all__ = ["create_app", "SimConfig"]
