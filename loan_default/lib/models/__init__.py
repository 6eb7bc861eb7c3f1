"""Model families: plain scikit-learn and torch estimators, no Dagster."""
