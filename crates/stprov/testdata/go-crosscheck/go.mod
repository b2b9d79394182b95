module stprovcheck

go 1.19
