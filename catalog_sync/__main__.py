from catalog_sync.cli import main

main(prog_name="catalog-sync")
