package fuzz
import rego.v1
f(x) := f(x)
allow := f(1)
