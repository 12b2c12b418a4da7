package fuzz
import rego.v1
allow := count([x | some a in numbers.range(1, 100000); some b in numbers.range(1, 100000); x := a + b])
