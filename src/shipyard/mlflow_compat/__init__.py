"""MLflow compatibility: the MLflow REST protocol served over Shipyard's stores, and
``shipyard import mlflow``. What the ``mlflow`` client logs here is an ordinary
Shipyard run, model or artifact; what Shipyard logs is visible to MLflow code."""
