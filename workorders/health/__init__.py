"""Asset health (issue 20): diagnostics, health scores with their reasons and risk levels, and predictive work
orders. It lives with the work orders because the score reads the asset's failure history (corrective orders,
overdue preventive work) and the predictive job opens work orders; assets come first and know nothing of it."""
