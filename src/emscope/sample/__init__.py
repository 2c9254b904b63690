"""Sampling answers to evaluation questions, with and without the backdoor trigger."""
