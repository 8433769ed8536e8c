"""Knowledge distillation: a trained teacher network's maps as soft targets for a student."""
