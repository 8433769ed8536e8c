"""Accuracy evaluation: COCO (pycocotools), MPII, PoseTrack and error analysis."""
