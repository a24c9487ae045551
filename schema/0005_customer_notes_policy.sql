-- 0005 customer notes are personal data: staff write gate codes, relatives'
-- numbers and health remarks into them. They become a sensitive field, so
-- the audit trail keeps only "(n characters)" and each role gets a level.
INSERT INTO field_policies (role, resource, field, level) VALUES
    ('admin', 'customer', 'notes', 'clear'),
    ('billing_clerk', 'customer', 'notes', 'clear'),
    ('customer_service', 'customer', 'notes', 'clear'),
    ('technician', 'customer', 'notes', 'clear'),
    ('analyst', 'customer', 'notes', 'hidden'),
    ('auditor', 'customer', 'notes', 'masked');
