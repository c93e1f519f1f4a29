// lamp-app: a little progressive enhancement; every page works without it.
document.addEventListener('DOMContentLoaded', () => {
  // Mark the current section in the navigation.
  for (const link of document.querySelectorAll('nav a')) {
    if (link.pathname === location.pathname) link.setAttribute('aria-current', 'page');
  }
  // Count down the characters left in fields with a maxlength.
  for (const field of document.querySelectorAll('[maxlength]')) {
    const counter = document.createElement('small');
    const update = () => { counter.textContent = `${field.maxLength - field.value.length} left`; };
    field.after(counter);
    field.addEventListener('input', update);
    update();
  }
});
