"""The engine behind the controller: planning, the content-hash cache, reconciliation and launchers."""
