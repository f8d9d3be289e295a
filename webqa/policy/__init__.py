"""The behavior-cloned policy: base model (model.py), prompts, scripted expert, training (train.py), rollouts."""
