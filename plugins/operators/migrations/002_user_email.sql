-- An operator's email address: where mail meant for that person goes (alert delivery
-- for those who opt in). Optional; changed by its owner after re-entering the password.
alter table users add column email text
  check (email is null or (length(email) between 3 and 254 and email ~ '^[^@\s]+@[^@\s]+$'));
