module shrapnel-bench/echo

go 1.19
