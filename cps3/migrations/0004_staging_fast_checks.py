from django.db import migrations, models

# Import speed (ADR 0025): the staging view's checks and digest, cheaper per row.
# - Every valid YYYY-MM-DD date from 1900 to 2199 as text: a date column is checked by a hashed
#   lookup in this table, and only a value not found goes through cps3_is_date (the exact check),
#   which stays the rule (a date outside the range is still accepted when it exists).
# - The digest of each row is PostgreSQL's 64-bit text hash (the one hash partitioning relies on,
#   stable across versions), three times cheaper than md5 here; digests stored before this
#   migration no longer match, so the next import rewrites each card once.
# - The digest of each row is computed once, in a subquery the planner does not flatten (OFFSET 0),
#   so a query that joins on it and keeps it computes md5 once, not once per use; the reason is
#   computed in the outer level, only for the rows a query keeps after its joins.
FORWARD = """
CREATE TABLE cps3_valid_date (d text PRIMARY KEY);
INSERT INTO cps3_valid_date
SELECT to_char(day, 'YYYY-MM-DD')
  FROM generate_series(date '1900-01-01', date '2199-12-31', interval '1 day') AS day;
ANALYZE cps3_valid_date;
DROP VIEW cps3_staging_checked;
CREATE VIEW cps3_staging_checked AS
SELECT s.*, CASE
      WHEN coalesce(trim(s.national_id), '') = '' THEN 'national_id is empty'
      WHEN coalesce(trim(s.last_name), '') = '' THEN 'last_name is empty'
      WHEN coalesce(trim(s.first_name), '') = '' THEN 'first_name is empty'
      WHEN translate(coalesce(trim(s.profession), ''), '0123456789', '9999999999') <> '99'
        THEN 'profession is not a 2-digit code'
      WHEN length(coalesce(trim(s.chip_serial), '')) NOT BETWEEN 8 AND 32
           OR trim(s.chip_serial) ~ '[^0-9A-Fa-f]'
        THEN 'chip_serial is not 8 to 32 hexadecimal digits'
      WHEN upper(trim(coalesce(s.card_type, ''))) NOT IN ('CPS', 'CPF', 'CPE', 'CPA')
        THEN 'card_type is not CPS, CPF, CPE or CPA'
      WHEN coalesce(s.issued_on, '') NOT IN (SELECT d FROM cps3_valid_date)
           AND NOT cps3_is_date(s.issued_on)
        THEN 'issued_on is not a YYYY-MM-DD date'
      WHEN coalesce(s.expires_on, '') NOT IN (SELECT d FROM cps3_valid_date)
           AND NOT cps3_is_date(s.expires_on)
        THEN 'expires_on is not a YYYY-MM-DD date'
      WHEN lower(trim(coalesce(s.card_status, '')))
           NOT IN ('active', 'suspended', 'revoked', 'expired')
        THEN 'card_status is not active, suspended, revoked or expired'
      WHEN coalesce(s.birth_date, '') <> ''
           AND coalesce(s.birth_date, '') NOT IN (SELECT d FROM cps3_valid_date)
           AND NOT cps3_is_date(s.birth_date)
        THEN 'birth_date is not a YYYY-MM-DD date'
      WHEN coalesce(s.auth_serial, '') <> '' AND (length(s.auth_serial) > 64
           OR s.auth_serial ~ '[^0-9A-Fa-f]'
           OR (coalesce(s.auth_not_after, '') NOT IN (SELECT d FROM cps3_valid_date)
               AND NOT cps3_is_date(s.auth_not_after))
           OR lower(coalesce(s.auth_status, '')) NOT IN ('valid', 'revoked', 'expired'))
        THEN 'auth certificate: serial (hex), not_after (date) and status are required'
      WHEN coalesce(s.sign_serial, '') <> '' AND (length(s.sign_serial) > 64
           OR s.sign_serial ~ '[^0-9A-Fa-f]'
           OR (coalesce(s.sign_not_after, '') NOT IN (SELECT d FROM cps3_valid_date)
               AND NOT cps3_is_date(s.sign_not_after))
           OR lower(coalesce(s.sign_status, '')) NOT IN ('valid', 'revoked', 'expired'))
        THEN 'sign certificate: serial (hex), not_after (date) and status are required'
    END AS reason
  FROM (SELECT t.*, upper(trim(t.chip_serial)) AS serial_key,
               lpad(to_hex(hashtextextended(concat_ws('|', t.national_id, t.last_name,
                   t.first_name, t.birth_date, t.profession, t.departement, t.chip_serial,
                   t.card_type, t.issued_on, t.expires_on, t.card_status, t.auth_issuer,
                   t.auth_serial, t.auth_not_after, t.auth_status, t.sign_issuer, t.sign_serial,
                   t.sign_not_after, t.sign_status), 0)), 16, '0') AS digest
          FROM cps3_staging t OFFSET 0) AS s;
"""

BACKWARD = """
DROP VIEW cps3_staging_checked;
DROP TABLE cps3_valid_date;
CREATE VIEW cps3_staging_checked AS
SELECT s.*, CASE
      WHEN coalesce(trim(s.national_id), '') = '' THEN 'national_id is empty'
      WHEN coalesce(trim(s.last_name), '') = '' THEN 'last_name is empty'
      WHEN coalesce(trim(s.first_name), '') = '' THEN 'first_name is empty'
      WHEN translate(coalesce(trim(s.profession), ''), '0123456789', '9999999999') <> '99'
        THEN 'profession is not a 2-digit code'
      WHEN length(coalesce(trim(s.chip_serial), '')) NOT BETWEEN 8 AND 32
           OR trim(s.chip_serial) ~ '[^0-9A-Fa-f]'
        THEN 'chip_serial is not 8 to 32 hexadecimal digits'
      WHEN upper(trim(coalesce(s.card_type, ''))) NOT IN ('CPS', 'CPF', 'CPE', 'CPA')
        THEN 'card_type is not CPS, CPF, CPE or CPA'
      WHEN NOT cps3_is_date(s.issued_on) THEN 'issued_on is not a YYYY-MM-DD date'
      WHEN NOT cps3_is_date(s.expires_on) THEN 'expires_on is not a YYYY-MM-DD date'
      WHEN lower(trim(coalesce(s.card_status, '')))
           NOT IN ('active', 'suspended', 'revoked', 'expired')
        THEN 'card_status is not active, suspended, revoked or expired'
      WHEN coalesce(s.birth_date, '') <> '' AND NOT cps3_is_date(s.birth_date)
        THEN 'birth_date is not a YYYY-MM-DD date'
      WHEN coalesce(s.auth_serial, '') <> '' AND (length(s.auth_serial) > 64
           OR s.auth_serial ~ '[^0-9A-Fa-f]'
           OR NOT cps3_is_date(s.auth_not_after)
           OR lower(coalesce(s.auth_status, '')) NOT IN ('valid', 'revoked', 'expired'))
        THEN 'auth certificate: serial (hex), not_after (date) and status are required'
      WHEN coalesce(s.sign_serial, '') <> '' AND (length(s.sign_serial) > 64
           OR s.sign_serial ~ '[^0-9A-Fa-f]'
           OR NOT cps3_is_date(s.sign_not_after)
           OR lower(coalesce(s.sign_status, '')) NOT IN ('valid', 'revoked', 'expired'))
        THEN 'sign certificate: serial (hex), not_after (date) and status are required'
    END AS reason,
    md5(concat_ws('|', s.national_id, s.last_name, s.first_name, s.birth_date, s.profession, s.departement, s.chip_serial, s.card_type, s.issued_on, s.expires_on, s.card_status, s.auth_issuer, s.auth_serial, s.auth_not_after, s.auth_status, s.sign_issuer, s.sign_serial, s.sign_not_after, s.sign_status)) AS digest
  FROM cps3_staging s;
"""


class Migration(migrations.Migration):
    dependencies = [("cps3", "0003_waves")]

    operations = [
        migrations.AlterField(
            model_name="cps3card",
            name="row_digest",
            field=models.CharField(
                help_text="hash of the row's fields as exported: unchanged rows are skipped",
                max_length=32,
            ),
        ),
        migrations.AddIndex(
            model_name="cps3card",
            index=models.Index(
                condition=models.Q(("holder__isnull", True)),
                fields=["national_id"],
                name="cps3_card_holder_unknown_idx",
            ),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
