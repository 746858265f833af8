"""adscore: cloud detections for T1578.001 Create Snapshot and T1526 Cloud Service Discovery."""

__version__ = "0.1.0"
__all__ = ["__version__"]
