<?php

// The seed's handler: Lambda calls index() with the event decoded as an array.
function index($data)
{
    return "Hello, " . $data['name'];
}
