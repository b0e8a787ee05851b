"""The actor-learner training system (Sebulba-style): actors, learner, loop, checkpoints."""
