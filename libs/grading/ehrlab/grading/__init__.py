"""Note-generation and rubric-grading experiments: cases, rubrics, models, scoring, backends, planner, analysis."""
