-- A trust policy speaks for whoever last saved it (created, changed or enabled it): a
-- person ('person', user id), an API token ('token', token id) or the operator
-- ('operator'). Every exchange checks that this credential could still mint the token.
ALTER TABLE trust_policies ADD COLUMN creator_kind TEXT;
ALTER TABLE trust_policies ADD COLUMN creator_id TEXT;

-- Policies saved before: the newest create/update/enable entry of the audit log names
-- who saved it. A policy with no such entry speaks for no one and mints nothing until
-- an owner or admin saves it again.
UPDATE trust_policies SET
    creator_kind = (
        SELECT CASE a.actor_type WHEN 'user' THEN 'person' WHEN 'token' THEN 'token' WHEN 'system' THEN 'operator' END
        FROM audit_log a
        WHERE a.target_type = 'trust_policy' AND a.target_id = trust_policies.id
          AND a.action IN ('trust_policy.created', 'trust_policy.updated', 'trust_policy.enabled')
        ORDER BY a.id DESC LIMIT 1),
    creator_id = (
        SELECT a.actor_id
        FROM audit_log a
        WHERE a.target_type = 'trust_policy' AND a.target_id = trust_policies.id
          AND a.action IN ('trust_policy.created', 'trust_policy.updated', 'trust_policy.enabled')
        ORDER BY a.id DESC LIMIT 1);
