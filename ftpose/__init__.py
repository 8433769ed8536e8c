"""ftpose: real-time multi-person 2D pose estimation with deep feature transfer."""
__version__ = "0.1.0"
