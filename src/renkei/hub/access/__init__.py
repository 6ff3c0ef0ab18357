"""People and permissions: designated users, terminals, login, data-use applications, grants, quotas."""
