"""The pure domain: the BankAccount aggregate and its business errors. No SQL, Redis or HTTP here."""
