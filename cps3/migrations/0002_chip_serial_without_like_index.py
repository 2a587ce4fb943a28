from django.db import migrations

# Django adds a text_pattern_ops twin to every unique CharField index, for LIKE lookups. Nothing
# searches CPS3 chip serials by prefix, and each index costs every row an import writes (1.5
# million). Created by 0001's deferred SQL, so dropped here.
DROP_LIKE = """
DO $$ BEGIN
    EXECUTE (SELECT format('DROP INDEX %I', indexname) FROM pg_indexes
              WHERE tablename = 'cps3_cps3card' AND indexname LIKE 'cps3_cps3card_chip_serial%like');
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("cps3", "0001_inventory")]

    operations = [migrations.RunSQL(DROP_LIKE, migrations.RunSQL.noop)]
