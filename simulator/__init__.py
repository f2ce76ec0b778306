"""A simulated club's history (members, visits, payments, cancellations, ground truth), written
as the files a club would export. Imports only the contracts (schemas)."""
