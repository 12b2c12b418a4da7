package fuzz
import rego.v1
a := b
b := a
allow := a
