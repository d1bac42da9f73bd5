"""The grader service. Note generation and rubric grading through model backends."""
